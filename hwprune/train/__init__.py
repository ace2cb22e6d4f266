"""Brevitas model and data, the QAT + pruning loop (hwprune.train.loop).

``hwprune.train(config, out_dir)`` is also the API's train step (``hwprune.api.train``): the
package is callable, because a package attribute of ``hwprune`` and an API function of the
same name cannot both be ``hwprune.train`` otherwise.
"""

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from hwprune.api import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage

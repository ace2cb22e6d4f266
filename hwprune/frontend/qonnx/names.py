"""The user's names for the nodes and tensors of a model that qonnx cleanup renamed.

qonnx cleanup renames every node (``GiveUniqueNodeNames``: ``Quant_0``, ...) and every tensor
(``GiveReadableTensorNames``: ``global_in``, ``Quant_0_out0``, ``Quant_0_param0``), folds
constant nodes away and can rewire outputs (``FoldTransposeIntoQuantInit``), so neither node
names nor output tensors identify a node across cleanup. Node ``doc_string`` does: cleanup
never touches it. ``tag`` writes each node's name, op type, inputs and outputs as the user's
file has them into its doc_string before cleanup; ``UserNames`` reads them back after, so
every message names a node as the user's file does.
"""

from __future__ import annotations

import json

# Marks a doc_string written by ``tag`` (a user's own doc_string is never read as a tag).
_PREFIX = "hwprune user node: "


def describe(name: str, op_type: str, outputs) -> str:
    """A node as a message names it: by name, or by its first output when it has none."""
    if name:
        return f"node {name!r} ({op_type})"
    out = next((o for o in outputs if o), None)
    return f"the unnamed {op_type} node" + (f" producing {out!r}" if out else "")


def tag(graph) -> None:
    """Record each node's user-facing identity in its doc_string (replacing the user's
    doc_string, which the import never reads), so it survives qonnx cleanup."""
    for node in graph.node:
        node.doc_string = _PREFIX + json.dumps(
            {
                "name": node.name,
                "op": node.op_type,
                "inputs": list(node.input),
                "outputs": list(node.output),
            }
        )


def _read(node) -> dict | None:
    if node.doc_string.startswith(_PREFIX):
        return json.loads(node.doc_string[len(_PREFIX) :])
    return None


class UserNames:
    """The user's names for a cleaned model's nodes and tensors, read from ``tag``'s
    doc_strings. A model imported without tags (cleaned some other way) keeps its own names."""

    def __init__(self, graph) -> None:
        self._tensors: dict[str, str] = {}
        self.tagged = False
        # A cleaned tensor is named as its producer's output first: a tensor cleanup folded
        # into a constant is then named by the input slot of the node reading it.
        tags = [(n, _read(n)) for n in graph.node]
        for node, t in tags:
            if t is not None and len(t["outputs"]) == len(node.output):
                self.tagged = True
                self._tensors.update(zip(node.output, t["outputs"]))
        for node, t in tags:
            if t is not None and len(t["inputs"]) == len(node.input):
                for cleaned, user in zip(node.input, t["inputs"]):
                    self._tensors.setdefault(cleaned, user)

    def node(self, node) -> str:
        """``node 'fc1' (Gemm)`` with the user's name, or ``the unnamed Quant node producing
        'q'`` with the user's tensor name; a node cleanup created is said to be one."""
        t = _read(node)
        if t is not None:
            return describe(t["name"], t["op"], t["outputs"])
        if self.tagged:
            return f"node {node.name!r} ({node.op_type}, created by qonnx cleanup)"
        return describe(node.name, node.op_type, node.output)

    def tensor(self, name: str) -> str:
        """The user's name of a cleaned model's tensor (the name itself if it has none)."""
        return self._tensors.get(name, name)

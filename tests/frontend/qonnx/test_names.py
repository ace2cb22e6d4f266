"""Messages name nodes and tensors as the user's file does, not as qonnx cleanup renamed them.

The model (op_models.build_user_named) names its nodes my_quant, fc1, Quant_0 (cleanup's
Quant_2), BipolarQuant_11 and leaves one unnamed; cleanup calls them Quant_0, Gemm_0, Quant_2,
BipolarQuant_0 and Quant_1, and its tensors global_in, Quant_0_out0, ..."""

from __future__ import annotations

import warnings

import pytest
from onnx import helper

from hwprune.errors import HwpruneError
from hwprune.frontend.qonnx import import_qonnx, load_model
from hwprune.frontend.qonnx.names import UserNames, tag
from hwprune.frontend.qonnx.state import ImportState
from tests.frontend.op_models import USER_NAMED_FAULTS, build_user_named

# fault -> (the node as the message must name it, words of the reason, cleaned names it must
# not hold). The user's own 'Quant_0' is another node than cleanup's Quant_0 (my_quant).
CASES = {
    "rounding_mode": ("node 'my_quant' (Quant)", ["rounding mode CEIL"], ["Quant_0"]),
    "bit_width": (
        "the unnamed Quant node producing 'w'",
        ["bit width 2.5"],
        ["Quant_1", "_param"],
    ),
    "zero_point": ("node 'Quant_0' (Quant)", ["zero point [0.5]"], ["Quant_2"]),
    "negative_scale": (
        "node 'BipolarQuant_11' (BipolarQuant)",
        ["not positive"],
        ["BipolarQuant_0"],
    ),
    "gemm_alpha": ("node 'fc1' (Gemm)", ["alpha=1"], ["Gemm_0"]),
    "float_input": ("node 'fc1' (Gemm)", ["float graph input 'x'"], ["Gemm_0", "global_in"]),
    "unsupported_op": ("the unnamed Erf node producing 'r_erf'", ["op type Erf"], ["Erf_0"]),
}


def test_every_fault_has_a_case():
    assert set(CASES) == set(USER_NAMED_FAULTS)


@pytest.mark.parametrize("fault", sorted(CASES))
def test_message_names_the_node_as_the_user_did(tmp_path, fault):
    warnings.filterwarnings("ignore")
    node, words, cleaned = CASES[fault]
    with pytest.raises(HwpruneError) as e:
        import_qonnx(build_user_named(tmp_path / "m.onnx", fault))
    msg = str(e.value)
    assert node in msg and "\n" not in msg, msg
    for w in words:
        assert w in msg, msg
    for c in cleaned:
        assert c not in msg, msg


def test_every_cleaned_node_maps_back_to_the_user_file(tmp_path):
    # The premise: qonnx cleanup renames every node and tensor but keeps each node's
    # doc_string, where load_model recorded the user's names.
    warnings.filterwarnings("ignore")
    m = load_model(build_user_named(tmp_path / "m.onnx"))
    st = ImportState(m)
    assert [n.name for n in m.graph.node] == [
        "Quant_0",
        "Quant_1",
        "Gemm_0",
        "Relu_0",
        "Quant_2",
        "BipolarQuant_0",
    ]
    assert [st.where(n) for n in m.graph.node] == [
        "node 'my_quant' (Quant)",
        "the unnamed Quant node producing 'w'",
        "node 'fc1' (Gemm)",
        "node 'relu' (Relu)",
        "node 'Quant_0' (Quant)",
        "node 'BipolarQuant_11' (BipolarQuant)",
    ]
    gemm = m.graph.node[2]
    assert [st.tensor(t) for t in (*gemm.input, *gemm.output)] == ["q_in", "w", "h"]
    assert st.tensor(m.graph.input[0].name) == "x" and st.tensor("w_f") == "w_f"


def test_host_input_sentence_names_the_users_quantizer(tmp_path):
    # A float input scale leaves the input quantizer to the host; report.md says which node.
    warnings.filterwarnings("ignore")
    g = import_qonnx(build_user_named(tmp_path / "m.onnx", input_scale=0.1))
    assert "node 'my_quant' (Quant)" in g.host_input.how and "Quant_0" not in g.host_input.how


def test_node_without_a_tag():
    # A node cleanup created has no recorded name and is said to be cleanup's; a model that
    # was never tagged (cleaned elsewhere) keeps its own names.
    user = helper.make_node("Relu", ["a"], ["b"])
    graph = helper.make_graph([user], "g", [], [])
    tag(graph)
    made = helper.make_node("Mul", ["b", "k"], ["c"], name="Mul_0")
    graph.node.append(made)
    names = UserNames(graph)
    assert names.node(graph.node[0]) == "the unnamed Relu node producing 'b'"
    assert names.node(made) == "node 'Mul_0' (Mul, created by qonnx cleanup)"
    plain = helper.make_graph(
        [helper.make_node("Mul", ["b", "k"], ["c"], name="Mul_0")], "g", [], []
    )
    assert UserNames(plain).node(plain.node[0]) == "node 'Mul_0' (Mul)"

"""The Pareto front on hand-worked cases."""

from hwprune.sweep.pareto import pareto_front


def test_hand_worked_front():
    # (accuracy, LUT). By hand, cheapest first:
    #   #3 (0.80, 50) on the front; #8 (0.70, 60) beaten by #3;
    #   cost 100: #0 (0.90) on it, #6 (0.85) beaten by #0; #2 (0.93, 200) on it;
    #   #4 (0.93, 250) beaten by #2 (as accurate, cheaper);
    #   #1 and #5 (0.95, 300) equal: both on it (neither beats the other);
    #   #7 (0.99, 1000) on it (the most accurate).
    pts = [
        (0.90, 100),
        (0.95, 300),
        (0.93, 200),
        (0.80, 50),
        (0.93, 250),
        (0.95, 300),
        (0.85, 100),
        (0.99, 1000),
        (0.70, 60),
    ]
    assert pareto_front(pts) == [3, 0, 2, 1, 5, 7]


def test_small_cases():
    assert pareto_front([]) == []
    assert pareto_front([(0.5, 10)]) == [0]
    assert pareto_front([(0.9, 20), (0.9, 10)]) == [1]  # as accurate and cheaper
    assert pareto_front([(0.9, 10), (0.95, 10)]) == [1]  # as cheap and more accurate
    assert pareto_front([(0.9, 10), (0.8, 20)]) == [0]  # better in both
    assert pareto_front([(0.8, 10), (0.9, 20)]) == [0, 1]  # a trade-off: both

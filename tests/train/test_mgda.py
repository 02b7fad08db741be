import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from mixdepth.train import min_norm_weights
from mixdepth.train.mgda import project_to_simplex


def _reference_qp(gram: np.ndarray) -> np.ndarray:
    """min w^T G w on the simplex with scipy's SLSQP, from the uniform point."""
    t = gram.shape[0]
    result = minimize(
        lambda w: w @ gram @ w,
        np.full(t, 1.0 / t),
        jac=lambda w: 2 * gram @ w,
        bounds=[(0.0, 1.0)] * t,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(t)}],
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    return result.x


def _gradients(rng, kind: str, t: int, p: int) -> np.ndarray:
    g = rng.normal(size=(t, p))
    if kind == "nearly_parallel":
        g = g[:1] * rng.uniform(0.5, 2.0, (t, 1)) + 1e-3 * g
    elif kind == "opposing":
        g[1] = -g[0] * rng.uniform(0.3, 3.0)
    elif kind == "low_rank":  # more tasks than dimensions: zero is often in the hull
        g = g[:, :2]
    elif kind == "scaled":
        g *= 10.0 ** rng.uniform(-3, 3, (t, 1))
    return g


@pytest.mark.parametrize("kind", ["random", "nearly_parallel", "opposing", "low_rank", "scaled"])
@pytest.mark.parametrize("t", [2, 3, 5, 8])
def test_matches_scipy_quadratic_program(kind, t):
    rng = np.random.default_rng(100 * t + len(kind))
    for _ in range(5):
        g = _gradients(rng, kind, t, p=int(rng.integers(3, 40)))
        gram = g @ g.T
        w = min_norm_weights(torch.from_numpy(g)).numpy()
        assert w.shape == (t,)
        assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-9
        ours, ref = w @ gram @ w, _reference_qp(gram) @ gram @ _reference_qp(gram)
        scale = np.trace(gram) / t
        assert ours <= ref + 1e-9 * scale, (kind, t, ours, ref)


@pytest.mark.parametrize("t", [2, 4, 7])
def test_optimality_every_gradient_has_nonnegative_descent(t):
    """At the min-norm point v: g_i . v >= |v|^2 for every task, with equality where w_i > 0."""
    rng = np.random.default_rng(t)
    g = torch.from_numpy(rng.normal(size=(t, 30)))
    w = min_norm_weights(g)
    v = w @ g
    products = g @ v
    norm2 = v @ v
    assert torch.all(products >= norm2 - 1e-8)
    assert torch.allclose(products[w > 1e-6], norm2.expand(int((w > 1e-6).sum())), atol=1e-7)


def test_two_tasks_closed_form():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    w = min_norm_weights(torch.stack([a, b]))
    # argmin |g a + (1-g) b|^2 = 4 / 5
    assert torch.allclose(w, torch.tensor([0.8, 0.2]), atol=1e-6)
    # one gradient inside the other's direction: the smaller one alone
    w = min_norm_weights(torch.stack([a, 3 * a]))
    assert torch.allclose(w, torch.tensor([1.0, 0.0]))


def test_degenerate_gradients():
    zeros = torch.zeros(4, 10)
    assert torch.allclose(min_norm_weights(zeros), torch.full((4,), 0.25))
    same = torch.ones(3, 10)
    w = min_norm_weights(same)
    assert torch.isclose(w.sum(), torch.tensor(1.0)) and torch.all(w >= 0)
    opposite = torch.tensor([[1.0, 2.0], [-2.0, -4.0]])
    w = min_norm_weights(opposite)
    assert torch.allclose(w @ opposite, torch.zeros(2), atol=1e-6)
    with_zero = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    w = min_norm_weights(with_zero)
    assert torch.allclose(w @ with_zero, torch.zeros(2), atol=1e-6)
    assert torch.allclose(min_norm_weights(torch.randn(1, 5)), torch.ones(1))
    assert min_norm_weights(torch.randn(3, 5, dtype=torch.float32)).dtype == torch.float32


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        min_norm_weights(torch.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        min_norm_weights(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 8).flatmap(
        lambda t: st.lists(
            st.lists(st.floats(-100, 100, allow_nan=False), min_size=4, max_size=4),
            min_size=t,
            max_size=t,
        )
    )
)
def test_property_not_worse_than_any_vertex_or_uniform(rows):
    g = torch.tensor(rows, dtype=torch.float64)
    w = min_norm_weights(g)
    assert torch.all(w >= 0) and torch.isclose(w.sum(), torch.tensor(1.0, dtype=torch.float64))
    value = (w @ g).square().sum()
    candidates = [g.square().sum(1).min(), g.mean(0).square().sum()]
    tol = 1e-9 * (1 + g.square().sum(1).max())
    assert all(value <= c + tol for c in candidates)


def test_simplex_projection():
    v = np.array([0.2, 1.5, -0.3])
    w = project_to_simplex(v)
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
    assert np.allclose(project_to_simplex(np.array([0.1, 0.3, 0.6])), [0.1, 0.3, 0.6])


def test_mgda_step_on_convex_toy_does_not_increase_any_objective():
    """Three convex quadratics f_i(x) = |A_i x - b_i|^2; a small step along the min-norm
    combination of their gradients lowers or keeps every one of them."""
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.normal(size=(3, 6, 4)))
    b = torch.from_numpy(rng.normal(size=(3, 6)))

    def objectives(x):
        return ((a @ x - b) ** 2).sum(1)

    x = torch.from_numpy(rng.normal(size=4) * 3)
    start = objectives(x)
    for _ in range(50):
        x.requires_grad_(True)
        values = objectives(x)
        grads = torch.stack([torch.autograd.grad(v, x, retain_graph=True)[0] for v in values])
        w = min_norm_weights(grads)
        with torch.no_grad():
            x_next = x - 1e-3 * (w @ grads)
            after = objectives(x_next)
        assert torch.all(after <= values.detach() + 1e-12), (values, after)
        x = x_next.detach()
    assert torch.all(objectives(x) < start)  # progress on every objective

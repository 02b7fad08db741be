"""The minimum-norm point in the convex hull of task gradients (MGDA, Sener & Koltun 2018).

Given T flattened task gradients g_1..g_T, `min_norm_weights` returns weights w on the
probability simplex that minimise || sum_t w_t g_t ||. The weighted sum is a direction along
which no task's loss increases to first order (or zero at a Pareto-stationary point).

Only the T x T Gram matrix G = g g^T enters the problem, so the solver works on G in float64:
closed form for two tasks; for more, accelerated projected gradient over the simplex followed
by an exact solve of the optimality conditions on the detected support.
"""

from __future__ import annotations

import numpy as np
import torch


def project_to_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of a vector v (T,) onto {w : w >= 0, sum w = 1} (sort-based)."""
    u = np.sort(v)[::-1]
    cumulative = np.cumsum(u) - 1.0
    index = np.arange(1, v.size + 1)
    rho = np.nonzero(u - cumulative / index > 0)[0][-1]
    theta = cumulative[rho] / (rho + 1.0)
    return np.maximum(v - theta, 0.0)


def _two_task_weights(gram: np.ndarray) -> np.ndarray:
    """Closed form for T = 2: argmin over g in [0, 1] of ||g a + (1 - g) b||^2."""
    aa, ab, bb = gram[0, 0], gram[0, 1], gram[1, 1]
    denom = aa - 2.0 * ab + bb  # ||a - b||^2
    if denom <= 1e-12 * max(aa, bb, 1e-300):
        return np.array([0.5, 0.5])  # identical (or both zero) gradients: any split is optimal
    gamma = float(np.clip((bb - ab) / denom, 0.0, 1.0))
    return np.array([gamma, 1.0 - gamma])


def _support_refinement(gram: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact minimiser on the support of w, if the KKT system there is solvable and feasible.

    On a support S the minimiser of w^T G w with sum w = 1 is w_S ~ G_S^+ 1. Returns w itself
    when the refined point is infeasible or not better.
    """
    support = w > 1e-10
    if support.sum() < 2:
        return w
    g_s = gram[np.ix_(support, support)]
    direction = np.linalg.lstsq(g_s, np.ones(int(support.sum())), rcond=1e-12)[0]
    total = direction.sum()
    if not np.isfinite(total) or total <= 0 or np.any(direction < 0):
        return w
    refined = np.zeros_like(w)
    refined[support] = direction / total
    if refined @ gram @ refined <= w @ gram @ w + 1e-15 * max(np.trace(gram), 1e-300):
        return refined
    return w


def _duality_gap(gram: np.ndarray, w: np.ndarray) -> float:
    """Frank-Wolfe gap of w^T G w at w: grad.w - min(grad); zero exactly at the optimum."""
    grad = 2.0 * (gram @ w)
    return float(grad @ w - grad.min())


def min_norm_weights_from_gram(
    gram: np.ndarray, max_iter: int = 2000, tol: float = 1e-12, gap_tol: float = 1e-11
) -> np.ndarray:
    """Simplex weights (T,) minimising w^T G w for a symmetric PSD Gram matrix G (T, T).

    Stops when the duality gap (relative to the largest squared gradient norm) is below
    gap_tol, when the iterates move less than tol, or after max_iter iterations."""
    gram = np.asarray(gram, dtype=np.float64)
    gram = 0.5 * (gram + gram.T)
    n = gram.shape[0]
    if n == 1:
        return np.ones(1)
    scale = float(np.max(np.diag(gram)))
    if not np.isfinite(scale) or scale <= 0.0:
        return np.full(n, 1.0 / n)  # all gradients zero: every point of the hull is optimal
    gram = gram / scale
    if n == 2:
        return _two_task_weights(gram)
    lipschitz = 2.0 * float(np.linalg.eigvalsh(gram)[-1])
    step = 1.0 / max(lipschitz, 1e-12)
    # Start at the best vertex or pair, then accelerated projected gradient (FISTA).
    w = np.full(n, 1.0 / n)
    best = w @ gram @ w
    for i in range(n):
        for j in range(i + 1, n):
            pair = _two_task_weights(gram[np.ix_([i, j], [i, j])])
            candidate = np.zeros(n)
            candidate[[i, j]] = pair
            value = candidate @ gram @ candidate
            if value < best:
                w, best = candidate, value
    y, momentum = w.copy(), 1.0
    for iteration in range(max_iter):
        if iteration % 8 == 0:  # once the support is found, its exact solution ends the search
            refined = _support_refinement(gram, w)
            if _duality_gap(gram, refined) <= gap_tol:
                return refined
        w_next = project_to_simplex(y - step * 2.0 * (gram @ y))
        momentum_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * momentum * momentum))
        y = w_next + ((momentum - 1.0) / momentum_next) * (w_next - w)
        if w_next @ gram @ w_next > w @ gram @ w:  # restart acceleration when it overshoots
            y, momentum_next = w_next.copy(), 1.0
        change = np.abs(w_next - w).max()
        w, momentum = w_next, momentum_next
        if change < tol:
            break
    return _support_refinement(gram, w)


def min_norm_weights(grads: torch.Tensor) -> torch.Tensor:
    """Weights (T,) on the simplex minimising || sum_t w_t grads[t] || for grads (T, P).

    Closed form for T = 2; projected gradient over the simplex otherwise. Parallel, opposing
    and zero gradients are handled: for zero or identical gradients the weights are uniform
    (or split evenly), for opposing ones the weights balance them to a zero sum. The result
    has the dtype and device of `grads` (float32 for integer input).
    """
    if grads.ndim != 2 or grads.shape[0] == 0:
        raise ValueError(f"grads must have shape (T, P) with T >= 1, got {tuple(grads.shape)}")
    work = grads if grads.is_floating_point() else grads.float()
    gram = (work @ work.T).double().cpu().numpy()
    if not np.isfinite(gram).all():  # any NaN or inf in grads reaches the Gram matrix
        raise ValueError("grads contain NaN or inf (or overflow when squared); cannot weight them")
    weights = min_norm_weights_from_gram(gram)
    return torch.as_tensor(weights, dtype=work.dtype, device=grads.device)


__all__ = ["min_norm_weights", "min_norm_weights_from_gram", "project_to_simplex"]

"""Disentanglement of latent codes against known factors: DCI, MIG and SAP.

* **DCI** (Eastwood & Williams, "A Framework for the Quantitative Evaluation of Disentangled
  Representations", ICLR 2018): an importance matrix ``R [code dims, factors]`` from one regressor per
  factor (Lasso on standardised codes, or a random forest). *Disentanglement*: each code dim's
  ``1 - H_K(R_i. / sum_j R_ij)`` (entropy base K = number of factors), weighted by the dim's share of the
  total importance. *Completeness*: each factor's ``1 - H_D(R_.j / sum_i R_ij)`` (base D = code dims),
  weighted by the factor's share. *Informativeness*: the mean held-out R² of the regressors.
* **MIG** (Chen et al., "Isolating Sources of Disentanglement in VAEs", NeurIPS 2018): codes and factors are
  discretised into ``bins`` equal-width bins; per factor, the gap between the two largest mutual
  informations with single code dims, divided by the factor's entropy; averaged over factors.
* **SAP** (Kumar et al., "Variational Inference of Disentangled Latent Concepts from Unlabeled
  Observations", ICLR 2018): the score of predicting factor j from code dim i alone (the squared
  correlation, the R² of a one-feature linear regression); per factor the gap between the two best dims;
  averaged.

Each returns a dict of floats; all scores lie in [0, 1], 1 = one code dim per factor.
"""

from __future__ import annotations

import numpy as np


def _check(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c, f = np.asarray(codes, np.float64), np.asarray(factors, np.float64)
    if c.ndim != 2 or f.ndim != 2 or c.shape[0] != f.shape[0]:
        raise ValueError(f"codes must be [N, D] and factors [N, K] with the same N, got {c.shape} and {f.shape}")
    if c.shape[0] < 10:
        raise ValueError(f"disentanglement metrics need at least 10 samples, got {c.shape[0]}")
    if not (np.isfinite(c).all() and np.isfinite(f).all()):
        raise ValueError("codes and factors must be finite")
    return c, f


def _entropy(p: np.ndarray, base: int, axis: int) -> np.ndarray:
    logp = np.log(np.where(p > 0, p, 1.0))  # 0 log 0 = 0
    return -(p * logp).sum(axis=axis) / np.log(base)


def importance_matrix(
    codes: np.ndarray,
    factors: np.ndarray,
    regressor: str = "lasso",
    train_fraction: float = 0.8,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """DCI's importance matrix ``[D, K]`` (non-negative) and the held-out R² ``[K]`` of each factor's regressor.

    Args:
        codes: ``[N, D]``; factors: ``[N, K]``.
        regressor: ``"lasso"`` (|coefficients| of a cross-validated Lasso on standardised codes) or
            ``"forest"`` (a random forest's impurity importances; slower, catches non-linear codes).
    """
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import LassoCV
    from sklearn.metrics import r2_score

    c, f = _check(codes, factors)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(c.shape[0])
    k = int(round(train_fraction * c.shape[0]))
    tr, te = perm[:k], perm[k:]
    mu, sd = c[tr].mean(0), c[tr].std(0) + 1e-12
    cs = (c - mu) / sd
    R = np.zeros((c.shape[1], f.shape[1]))
    r2 = np.zeros(f.shape[1])
    for j in range(f.shape[1]):
        y = f[:, j]
        if y[tr].std() == 0:
            continue  # a constant factor: no importance, no information
        if regressor == "lasso":
            model = LassoCV(cv=3, random_state=seed, max_iter=5000).fit(cs[tr], y[tr])
            R[:, j] = np.abs(model.coef_)
        elif regressor == "forest":
            model = RandomForestRegressor(n_estimators=50, max_depth=8, random_state=seed, n_jobs=1).fit(cs[tr], y[tr])
            R[:, j] = model.feature_importances_
        else:
            raise ValueError(f"regressor must be 'lasso' or 'forest', got {regressor!r}")
        r2[j] = r2_score(y[te], model.predict(cs[te]))
    return R, r2


def dci(codes: np.ndarray, factors: np.ndarray, regressor: str = "lasso", seed: int = 0) -> dict[str, float]:
    """``{"dci_disentanglement", "dci_completeness", "dci_informativeness"}`` (see the module docstring)."""
    R, r2 = importance_matrix(codes, factors, regressor=regressor, seed=seed)
    return {**dci_from_importance(R), "dci_informativeness": float(np.clip(r2, 0, 1).mean())}


def dci_from_importance(R: np.ndarray) -> dict[str, float]:
    """Disentanglement and completeness of an importance matrix ``[D, K]`` (the pure-math part of DCI)."""
    R = np.asarray(R, np.float64)
    total = R.sum()
    if total <= 0:
        return {"dci_disentanglement": 0.0, "dci_completeness": 0.0}
    D, K = R.shape
    code_w = R.sum(1) / total
    factor_w = R.sum(0) / total
    dis = 1 - _entropy(R / np.clip(R.sum(1, keepdims=True), 1e-12, None), max(K, 2), axis=1) if K > 1 else np.ones(D)
    com = 1 - _entropy(R / np.clip(R.sum(0, keepdims=True), 1e-12, None), max(D, 2), axis=0) if D > 1 else np.ones(K)
    return {"dci_disentanglement": float((dis * code_w).sum()), "dci_completeness": float((com * factor_w).sum())}


def _discretize(x: np.ndarray, bins: int) -> np.ndarray:
    """Each column into ``bins`` equal-width bins (columns with few distinct values keep them)."""
    out = np.zeros(x.shape, dtype=np.int64)
    for j in range(x.shape[1]):
        col = x[:, j]
        values = np.unique(col)
        if len(values) <= bins:
            out[:, j] = np.searchsorted(values, col)
        else:
            edges = np.histogram_bin_edges(col, bins)
            out[:, j] = np.digitize(col, edges[1:-1])
    return out


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> dict[str, float]:
    """``{"mig"}``: the mutual information gap, averaged over factors (constant factors are skipped)."""
    from sklearn.metrics import mutual_info_score

    c, f = _check(codes, factors)
    dc, df = _discretize(c, bins), _discretize(f, bins)
    gaps = []
    for j in range(f.shape[1]):
        h = mutual_info_score(df[:, j], df[:, j])  # the factor's entropy
        if h <= 0:
            continue
        mi = np.sort([mutual_info_score(dc[:, i], df[:, j]) for i in range(c.shape[1])])[::-1]
        second = mi[1] if len(mi) > 1 else 0.0
        gaps.append((mi[0] - second) / h)
    return {"mig": float(np.mean(gaps)) if gaps else 0.0}


def sap(codes: np.ndarray, factors: np.ndarray) -> dict[str, float]:
    """``{"sap"}``: the gap between the two code dims that best predict each factor alone (R² of a
    one-feature linear fit = squared correlation), averaged over factors."""
    c, f = _check(codes, factors)
    cz = c - c.mean(0)
    fz = f - f.mean(0)
    cov = cz.T @ fz / c.shape[0]
    var = np.outer(cz.var(0), fz.var(0))
    score = np.where(var > 0, cov**2 / np.clip(var, 1e-24, None), 0.0)  # [D, K]
    top = np.sort(score, axis=0)[::-1]
    gap = top[0] - (top[1] if c.shape[1] > 1 else 0.0)
    keep = fz.var(0) > 0
    return {"sap": float(gap[keep].mean()) if keep.any() else 0.0}


def disentanglement(codes: np.ndarray, factors: np.ndarray, regressor: str = "lasso", bins: int = 20,
                    seed: int = 0) -> dict[str, float]:  # fmt: skip
    """DCI, MIG and SAP of ``codes [N, D]`` against ``factors [N, K]`` in one dict."""
    return {**dci(codes, factors, regressor, seed), **mig(codes, factors, bins), **sap(codes, factors)}


def projected_factors(
    G,
    num: int,
    space: str = "w",
    dataset_seed: int = 4242,
    steps: int = 1000,
    loss: str = "auto",
    batch_size: int = 8,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Protocol 1: fresh SynthFaces renders with known factors, projected into W or W+.

    The codes are what a user gets from real photos; the factors are the renderer's ground truth, not a
    classifier's reading. W+ codes are flattened to ``[N, num_ws * w_dim]``.

    Args:
        G: a generator trained on SynthFaces (its resolution is used for the renders).
        num: renders ``0 .. num-1`` of ``dataset_seed`` (the embedded model was trained on seed 0).
        space: ``"w"`` (codes ``[N, w_dim]``) or ``"w+"``.
        steps, loss, batch_size: see :func:`latentlab.project`.
    Returns:
        ``(codes, factors [N, K], factor names)``; the circular hues are left out (no linear order).
    """
    from ..data.synthfaces import FACTORS, render_item
    from ..io.images import from_uint8
    from ..projection import project

    if space not in ("w", "w+"):
        raise ValueError(f"space must be 'w' or 'w+', got {space!r}")
    renders = [render_item(i, G.img_resolution, seed=dataset_seed) for i in range(num)]
    images = from_uint8(np.stack([img for img, _ in renders])).to(G.w_avg.device)
    keep = [k for k, name in enumerate(FACTORS) if name not in ("bg_hue", "shirt_hue")]
    factors = np.stack([face.vector() for _, face in renders])[:, keep]
    p = project(G, images, space=space, steps=steps, loss=loss, batch_size=batch_size, progress=progress)
    ws = p.ws.detach().cpu().numpy()
    codes = ws[:, 0] if space == "w" else ws.reshape(num, -1)
    return codes, factors.astype(np.float64), [FACTORS[k] for k in keep]

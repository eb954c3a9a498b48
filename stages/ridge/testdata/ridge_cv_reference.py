"""Independent float64 reference for the Go ridge solver's conventions:
contiguous K-fold CV (sklearn KFold, no shuffle), features standardised per
fold with the training rows' mean and population std (std 1 for constant
features), the intercept fitted as the training mean, each voxel's alpha
chosen by the mean over folds of held-out Pearson r (highest) or MSE
(lowest), first alpha on ties, then a refit on all rows standardised with
all rows' statistics and Pearson r on the test rows.

It solves the normal equations directly for every alpha (the primal
(X^T X + aI) w = X^T y when p <= n, the dual w = X^T (X X^T + aI)^-1 y
otherwise), sharing no code or algorithm with the Go solver's
eigendecomposition.

Usage: ridge_cv_reference.py DIR SCORE FOLDS, reading DIR/{x,y,xtest,ytest,
alphas}.npy (float64) and writing DIR/{alpha,cvscore,r}.npy.
"""
import sys

import numpy as np

d, score, folds = sys.argv[1], sys.argv[2], int(sys.argv[3])
x = np.load(f"{d}/x.npy")
y = np.load(f"{d}/y.npy")
xtest = np.load(f"{d}/xtest.npy")
ytest = np.load(f"{d}/ytest.npy")
alphas = np.load(f"{d}/alphas.npy")
n, p = x.shape


def stats(a):
    mu = a.mean(axis=0)
    sd = a.std(axis=0)
    sd[(sd < 10 * np.finfo(np.float32).tiny) | (sd <= 1e-12 * np.abs(mu))] = 1
    return mu, sd


def solve(xs, yc, a):
    if xs.shape[1] <= xs.shape[0]:
        return np.linalg.solve(xs.T @ xs + a * np.eye(xs.shape[1]), xs.T @ yc)
    return xs.T @ np.linalg.solve(xs @ xs.T + a * np.eye(xs.shape[0]), yc)


def pearson(pred, obs):
    pc, oc = pred - pred.mean(axis=0), obs - obs.mean(axis=0)
    num = (pc * oc).sum(axis=0)
    den = np.sqrt((pc * pc).sum(axis=0) * (oc * oc).sum(axis=0))
    return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


acc = np.zeros((len(alphas), y.shape[1]))
size, extra = divmod(n, folds)
for f in range(folds):
    lo = f * size + min(f, extra)
    hi = lo + size + (1 if f < extra else 0)
    tr = np.r_[0:lo, hi:n]
    mu, sd = stats(x[tr])
    xs, xv = (x[tr] - mu) / sd, (x[lo:hi] - mu) / sd
    ybar = y[tr].mean(axis=0)
    for ai, a in enumerate(alphas):
        pred = xv @ solve(xs, y[tr] - ybar, a) + ybar
        if score == "r":
            acc[ai] += pearson(pred, y[lo:hi])
        else:
            acc[ai] += ((pred - y[lo:hi]) ** 2).mean(axis=0)
acc /= folds
best = acc.argmax(axis=0) if score == "r" else acc.argmin(axis=0)
mu, sd = stats(x)
xs = (x - mu) / sd
ybar = y.mean(axis=0)
pred = np.empty_like(ytest)
for ai in np.unique(best):
    cols = best == ai
    w = solve(xs, y[:, cols] - ybar[cols], alphas[ai])
    pred[:, cols] = ((xtest - mu) / sd) @ w + ybar[cols]
np.save(f"{d}/alpha.npy", alphas[best])
np.save(f"{d}/cvscore.npy", acc[best, np.arange(y.shape[1])])
np.save(f"{d}/r.npy", pearson(pred, ytest))

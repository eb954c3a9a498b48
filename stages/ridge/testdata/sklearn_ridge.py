"""Reference for the Go ridge solver: StandardScaler + sklearn Ridge with one
alpha per target. Usage: sklearn_ridge.py DIR, reading DIR/{x,y,xtest,alpha}.npy
(float64) and writing DIR/{coef,intercept,pred}.npy."""
import sys

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

d = sys.argv[1]
x = np.load(f"{d}/x.npy")
y = np.load(f"{d}/y.npy")
xtest = np.load(f"{d}/xtest.npy")
alpha = np.load(f"{d}/alpha.npy")
sc = StandardScaler().fit(x)
m = Ridge(alpha=alpha, fit_intercept=True, solver="svd").fit(sc.transform(x), y)
np.save(f"{d}/coef.npy", np.ascontiguousarray(m.coef_.T))  # p x v like the Go weights
np.save(f"{d}/intercept.npy", m.intercept_)
np.save(f"{d}/pred.npy", m.predict(sc.transform(xtest)))

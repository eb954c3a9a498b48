"""Reference for the probe: StandardScaler + sklearn LogisticRegression
(multinomial, lbfgs). Usage: sklearn_logreg.py DIR C, reading
DIR/{train,test}.npy and DIR/{train,test}_labels.npy; prints the test
top-1 accuracy."""
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

d, c = sys.argv[1], float(sys.argv[2])
xtr, ytr = np.load(f"{d}/train.npy").astype(np.float64), np.load(f"{d}/train_labels.npy")
xte, yte = np.load(f"{d}/test.npy").astype(np.float64), np.load(f"{d}/test_labels.npy")
sc = StandardScaler().fit(xtr)
m = LogisticRegression(C=c, max_iter=5000, tol=1e-8).fit(sc.transform(xtr), ytr)
print(np.mean(m.predict(sc.transform(xte)) == yte))

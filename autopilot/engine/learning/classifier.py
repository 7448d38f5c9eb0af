"""Image-level classification: standardised descriptors and logistic regression.

When every training image carries exactly one label the labels are mutually exclusive and one
multinomial model gives calibrated, competing probabilities; otherwise each label gets its own
binary model (multi-label images).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


class ImageClassifier:
    def __init__(self, labels: list[str], exclusive: bool, c: float = 0.5) -> None:
        self.labels = labels
        self.exclusive = exclusive
        self.c = c
        self.scaler = StandardScaler()
        self.multinomial: LogisticRegression | None = None
        self.binary: list[LogisticRegression | float] = []

    def fit(self, features: np.ndarray, targets: np.ndarray) -> ImageClassifier:
        """``targets`` is an (n, labels) 0/1 matrix."""
        x = self.scaler.fit_transform(features)
        if self.exclusive:
            y = targets.argmax(axis=1)
            self.multinomial = LogisticRegression(C=self.c, max_iter=500)
            self.multinomial.fit(x, y)
        else:
            self.binary = []
            for column in range(targets.shape[1]):
                y = targets[:, column]
                if y.min() == y.max():
                    self.binary.append(float(y[0]))
                    continue
                model = LogisticRegression(C=self.c, max_iter=500)
                model.fit(x, y)
                self.binary.append(model)
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        x = self.scaler.transform(features)
        if self.multinomial is not None:
            proba = np.zeros((x.shape[0], len(self.labels)))
            proba[:, self.multinomial.classes_] = self.multinomial.predict_proba(x)
            return proba
        columns = [
            np.full(x.shape[0], model) if isinstance(model, float) else model.predict_proba(x)[:, 1]
            for model in self.binary
        ]
        return np.stack(columns, axis=1)

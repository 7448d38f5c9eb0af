"""Image-level classification: standardised descriptors and logistic regression.

When every training image carries exactly one label the labels are mutually exclusive and one
multinomial model gives calibrated, competing probabilities; otherwise each label gets its own
binary model (multi-label images). Small datasets choose the regularisation strength by
cross-validation (few images and many descriptor dimensions overfit easily); large ones use a
fixed strength, which keeps training of a few thousand images within seconds.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.preprocessing import StandardScaler

DEFAULT_C = 0.5
CANDIDATE_C = (0.005, 0.05, 0.5)
CROSS_VALIDATE_BELOW = 600  # training images


def _fit(x: np.ndarray, y: np.ndarray) -> LogisticRegression | LogisticRegressionCV:
    smallest_class = int(np.bincount(y).min()) if y.size else 0
    if x.shape[0] < CROSS_VALIDATE_BELOW and smallest_class >= 2:
        return LogisticRegressionCV(
            Cs=list(CANDIDATE_C),
            cv=min(3, smallest_class),
            max_iter=500,
            l1_ratios=(0.0,),
            scoring="neg_log_loss",
            use_legacy_attributes=False,
        ).fit(x, y)
    return LogisticRegression(C=DEFAULT_C, max_iter=500).fit(x, y)


class ImageClassifier:
    def __init__(self, labels: list[str], exclusive: bool) -> None:
        self.labels = labels
        self.exclusive = exclusive
        self.scaler = StandardScaler()
        self.multinomial: LogisticRegression | LogisticRegressionCV | None = None
        self.binary: list[LogisticRegression | LogisticRegressionCV | float] = []

    def fit(self, features: np.ndarray, targets: np.ndarray) -> ImageClassifier:
        """``targets`` is an (n, labels) 0/1 matrix."""
        x = self.scaler.fit_transform(features)
        if self.exclusive:
            present = np.flatnonzero(targets.sum(axis=0) > 0)
            y = np.searchsorted(present, targets.argmax(axis=1))
            self._columns = present
            self.multinomial = _fit(x, y)
        else:
            self.binary = []
            for column in range(targets.shape[1]):
                y = targets[:, column].astype(int)
                if y.min() == y.max():
                    self.binary.append(float(y[0]))
                    continue
                self.binary.append(_fit(x, y))
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        x = self.scaler.transform(features)
        if self.multinomial is not None:
            proba = np.zeros((x.shape[0], len(self.labels)))
            proba[:, self._columns[self.multinomial.classes_]] = self.multinomial.predict_proba(x)
            return proba
        columns = [
            np.full(x.shape[0], model) if isinstance(model, float) else model.predict_proba(x)[:, 1]
            for model in self.binary
        ]
        return np.stack(columns, axis=1)

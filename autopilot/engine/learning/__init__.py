"""Real, small learning: image features, a classifier, a sliding-window detector, evaluation."""

"""Pictures: training curves, PR curves, the confusion matrix, per-class AP and the dataset browser's figures.

matplotlib on its Agg backend (no display needed); every PNG is written atomically; a class has the same colour
here as in predict.py's drawings (src/deploy/draw.py).
"""

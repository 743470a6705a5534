"""The demo: train a small logistic regression over a grid of hyperparameters, log every step."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

GRID = {
    "learning_rate": (0.3, 0.1, 0.03),
    "batch_size": (16, 64),
    "optimizer": ("sgd", "momentum", "adam"),
}


@dataclass
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def make_dataset(n: int = 4000, features: int = 20, seed: int = 0) -> Dataset:
    """Two overlapping Gaussian classes; a fifth of them held out for validation."""
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=features)
    x = rng.normal(size=(n, features))
    y = (x @ w_true + rng.normal(scale=2.0, size=n) > 0).astype(np.float64)
    cut = n * 4 // 5
    return Dataset(x[:cut], y[:cut], x[cut:], y[cut:])


def grid() -> list[dict[str, Any]]:
    return [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]


def _loss_and_grad(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    p = 1.0 / (1.0 + np.exp(-(x @ w)))
    eps = 1e-12
    loss = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
    return float(loss), x.T @ (p - y) / len(y)


def _accuracy(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(((x @ w) > 0) == (y > 0.5)))


class Optimizer:
    """sgd, momentum or adam on one weight vector."""

    def __init__(self, kind: str, lr: float, size: int) -> None:
        self.kind, self.lr, self.t = kind, lr, 0
        self.m = np.zeros(size)
        self.v = np.zeros(size)

    def step(self, w: np.ndarray, grad: np.ndarray) -> np.ndarray:
        self.t += 1
        if self.kind == "sgd":
            return w - self.lr * grad
        if self.kind == "momentum":
            self.m = 0.9 * self.m + grad
            return w - self.lr * self.m
        self.m = 0.9 * self.m + 0.1 * grad
        self.v = 0.999 * self.v + 0.001 * grad**2
        m_hat = self.m / (1 - 0.9**self.t)
        v_hat = self.v / (1 - 0.999**self.t)
        return w - self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def train(
    config: dict[str, Any],
    data: Dataset,
    epochs: int,
    log: Callable[[dict[str, float]], None],
    seed: int = 0,
) -> float:
    """Train one model, calling ``log`` every step; returns the final validation accuracy."""
    rng = np.random.default_rng(seed)
    w = np.zeros(data.x_train.shape[1])
    opt = Optimizer(config["optimizer"], config["learning_rate"], len(w))
    batch = config["batch_size"]
    val_acc = 0.0
    for epoch in range(epochs):
        order = rng.permutation(len(data.y_train))
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            loss, grad = _loss_and_grad(w, data.x_train[idx], data.y_train[idx])
            w = opt.step(w, grad)
            log({"train/loss": loss, "epoch": epoch})
        val_loss, _ = _loss_and_grad(w, data.x_val, data.y_val)
        val_acc = _accuracy(w, data.x_val, data.y_val)
        log({"val/loss": val_loss, "val/acc": val_acc, "epoch": epoch})
    return val_acc

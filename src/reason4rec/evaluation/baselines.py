"""Rating-prediction baselines scored on exactly the test rows the method scores.

- ``global_mean``: the training mean.
- ``BaselineOnly``, ``SVD`` (biased MF), ``SVD++``: scikit-surprise, fitted on
  the training split.
- ``DeepCoNN``: two CNN towers over the user's and the item's training reviews
  and a factorization machine on top, in PyTorch, with word embeddings learned
  from the training reviews (no pretrained vectors can be downloaded offline).
  During training a row's own review is left out of both documents, so the
  model cannot read the rating it is trained to predict.

Fallback: an unknown user or item (none exists after the no-cold-start split,
but a user's own data may differ) gets surprise's default, the global mean,
and DeepCoNN an empty document; no method skips a row.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from reason4rec.parameters import Baselines, DeepCoNNSettings
from reason4rec.typed_config import typed_block

logger = logging.getLogger(__name__)


def global_mean_predictions(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    return np.full(len(test), train["rating"].mean())


def surprise_predictions(train: pd.DataFrame, test: pd.DataFrame, algorithm: str, params: dict[str, Any]) -> np.ndarray:
    from surprise import SVD, BaselineOnly, Dataset, Reader, SVDpp

    algorithms = {"BaselineOnly": BaselineOnly, "SVD": SVD, "SVD++": SVDpp}
    trainset = Dataset.load_from_df(train[["user_id", "item_id", "rating"]], Reader(rating_scale=(1, 5))).build_full_trainset()
    model = algorithms[algorithm](**params)
    model.fit(trainset)
    return np.array([model.predict(u, i).est for u, i in zip(test["user_id"], test["item_id"])])


# ---------------------------------------------------------------- DeepCoNN

_WORD = re.compile(r"[a-z0-9']+")


def _tokens(text: str) -> list[str]:
    return _WORD.findall(str(text).lower())


class DeepCoNN(nn.Module):
    """Zheng et al. 2017: a CNN tower per side, an FM over their concatenation."""

    def __init__(self, vocab_size: int, embedding_dim: int, filters: int, kernel: int, latent: int, factors: int = 8, dropout: float = 0.5):
        super().__init__()
        self.user_tower = self._tower(vocab_size, embedding_dim, filters, kernel)
        self.item_tower = self._tower(vocab_size, embedding_dim, filters, kernel)
        self.user_out = nn.Linear(filters, latent)
        self.item_out = nn.Linear(filters, latent)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(2 * latent, 1)
        self.factors = nn.Parameter(torch.randn(2 * latent, factors) * 0.01)

    @staticmethod
    def _tower(vocab_size: int, embedding_dim: int, filters: int, kernel: int) -> nn.ModuleDict:
        return nn.ModuleDict({"embed": nn.Embedding(vocab_size, embedding_dim, padding_idx=0), "conv": nn.Conv1d(embedding_dim, filters, kernel, padding=kernel // 2)})

    @staticmethod
    def _encode(tower: nn.ModuleDict, ids: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(tower["conv"](tower["embed"](ids).transpose(1, 2)))
        return hidden.max(dim=-1).values

    def forward(self, user_doc: torch.Tensor, item_doc: torch.Tensor) -> torch.Tensor:
        u = self.dropout(torch.relu(self.user_out(self._encode(self.user_tower, user_doc))))
        i = self.dropout(torch.relu(self.item_out(self._encode(self.item_tower, item_doc))))
        x = torch.cat([u, i], dim=-1)
        interactions = 0.5 * ((x @ self.factors) ** 2 - (x**2) @ (self.factors**2)).sum(-1)
        return self.linear(x).squeeze(-1) + interactions


def deepconn_predictions(train: pd.DataFrame, test: pd.DataFrame, params: DeepCoNNSettings) -> np.ndarray:
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    tokenized = [_tokens(r) for r in train["review"]]
    counts = Counter(t for tokens in tokenized for t in tokens)
    vocab = {w: i + 2 for i, (w, _) in enumerate(counts.most_common(params.vocab_size - 2))}  # 0 pad, 1 unknown
    ids = [[vocab.get(t, 1) for t in tokens] for tokens in tokenized]
    length = params.doc_tokens

    by_user: dict[str, list[int]] = {}
    by_item: dict[str, list[int]] = {}
    ordered = train.reset_index(drop=True).sort_values("timestamp", kind="stable")
    for row, (user, item) in zip(ordered.index, zip(ordered["user_id"], ordered["item_id"])):
        by_user.setdefault(user, []).append(row)
        by_item.setdefault(item, []).append(row)

    def document(rows: list[int], leave_out: int | None) -> list[int]:
        tokens: list[int] = []
        for row in reversed(rows):  # most recent reviews first
            if row != leave_out:
                tokens.extend(ids[row])
            if len(tokens) >= length:
                break
        return (tokens[:length] + [0] * length)[:length]

    def documents(frame: pd.DataFrame, leave_out_self: bool) -> tuple[torch.Tensor, torch.Tensor]:
        users, items = [], []
        for position, (user, item) in enumerate(zip(frame["user_id"], frame["item_id"])):
            own = position if leave_out_self else None
            users.append(document(by_user.get(user, []), own))
            items.append(document(by_item.get(item, []), own))
        return torch.tensor(users), torch.tensor(items)

    train_users, train_items = documents(train.reset_index(drop=True), leave_out_self=True)
    targets = torch.tensor(train["rating"].to_numpy(np.float32))
    mean = float(targets.mean())
    model = DeepCoNN(len(vocab) + 2, params.embedding_dim, params.filters, params.kernel, params.latent)
    optimiser = torch.optim.Adam(model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay)
    for epoch in range(params.epochs):
        model.train()
        order = rng.permutation(len(targets))
        total = 0.0
        for start in range(0, len(order), params.batch_size):
            batch = torch.tensor(order[start : start + params.batch_size])
            loss = ((model(train_users[batch], train_items[batch]) + mean - targets[batch]) ** 2).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss) * len(batch)
        logger.info("DeepCoNN epoch %d: train MSE %.4f", epoch + 1, total / len(order))
    model.eval()
    test_users, test_items = documents(test, leave_out_self=False)
    with torch.no_grad():
        return (model(test_users, test_items) + mean).clamp(1, 5).numpy()


def predict_with_baselines(interactions_train: pd.DataFrame, interactions_test: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Every baseline's prediction for every test row (long format), each fitted on the training split."""
    config = typed_block(Baselines, params, "baselines")
    test = interactions_test.reset_index(drop=True)
    methods = {
        "Global mean": lambda: global_mean_predictions(interactions_train, test),
        "BaselineOnly": lambda: surprise_predictions(interactions_train, test, "BaselineOnly", config.baseline_only),
        "SVD (biased MF)": lambda: surprise_predictions(interactions_train, test, "SVD", config.svd),
        "SVD++": lambda: surprise_predictions(interactions_train, test, "SVD++", config.svdpp),
        "DeepCoNN": lambda: deepconn_predictions(interactions_train, test, config.deepconn),
    }
    frames = []
    for name, predict in methods.items():
        logger.info("baseline %s", name)
        frames.append(test[["user_id", "item_id", "rating"]].assign(method=name, prediction=predict()))
    return pd.concat(frames, ignore_index=True)

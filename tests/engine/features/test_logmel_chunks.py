"""Long tracks' log-mel is computed in chunks of STFT frames (bounded memory, issue 8): same values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.features import logmel


@pytest.mark.parametrize("n", [22050 * 3, 22050 * 3 + 1, 22050 * 3 + 551, 22050 * 3 + 1101])
def test_chunked_mel_power_equals_the_transform(monkeypatch, n):
    monkeypatch.setattr(logmel, "_MAX_STFT_VALUES", 1 << 14)  # force several chunks on 3 s
    x = torch.from_numpy(np.random.default_rng(n).standard_normal(n) * 0.1)
    with torch.inference_mode():
        for win, hop in logmel._resolutions(logmel.LOGMEL_SR):
            whole = logmel._mel_transform(logmel.LOGMEL_SR, win, hop)(x)
            chunked = logmel._mel_power(logmel.LOGMEL_SR, win, hop, x)
            assert chunked.shape == whole.shape
            torch.testing.assert_close(chunked, whole, rtol=1e-12, atol=1e-12)


def test_log_mel_3res_same_with_and_without_chunks(monkeypatch):
    wave = (np.random.default_rng(1).standard_normal(22050 * 4) * 0.1).astype(np.float32)
    ref = logmel.log_mel_3res(wave)
    monkeypatch.setattr(logmel, "_MAX_STFT_VALUES", 1 << 13)
    np.testing.assert_allclose(logmel.log_mel_3res(wave), ref, rtol=0, atol=1e-5)


def test_mel_transform_cache_is_bounded():
    assert logmel._mel_transform.cache_info().maxsize is not None

"""Signal features shared by detectors, the trainer and the GUI (Qt-free).

* :func:`log_mel_3res`, :func:`log_mel_3res_bandpass`: seed 1's 3-resolution
  log-mel image, float32 (3, 128, 1500) from 22050 Hz mono (seeds.md §1.4, §1.5).
* :func:`azimuthal_spectrum`, :func:`azimuthal_spectra`: seed 4's 300-value
  azimuthal FFT profile of a face crop (seeds.md §4.1).
* :func:`display_spectrogram` -> :class:`DisplaySpectrogram`: dB STFT with
  time/frequency axes for the GUI's spectrogram pane.
"""

from engine.features.logmel import (
    LOGMEL_RESOLUTIONS_MS,
    LOGMEL_SHAPE,
    LOGMEL_SR,
    log_mel_3res,
    log_mel_3res_bandpass,
)
from engine.features.spectrogram import DisplaySpectrogram, display_spectrogram
from engine.features.spectrum import (
    MIN_CROP_PX,
    SPECTRUM_FEATURES,
    azimuthal_spectra,
    azimuthal_spectrum,
)

__all__ = [
    "LOGMEL_SR",
    "LOGMEL_SHAPE",
    "LOGMEL_RESOLUTIONS_MS",
    "log_mel_3res",
    "log_mel_3res_bandpass",
    "SPECTRUM_FEATURES",
    "MIN_CROP_PX",
    "azimuthal_spectrum",
    "azimuthal_spectra",
    "DisplaySpectrogram",
    "display_spectrogram",
]

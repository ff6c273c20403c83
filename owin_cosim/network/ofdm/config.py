"""Parameters of the analytic OFDM uplink: the ``network.ofdm`` block of a scenario.

Plain pydantic models and unit conversions, nothing else: the scenario schema imports
this module, so it must stay light (no numpy, no zmq).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from owin_cosim.network.base import dbm_to_w

__all__ = ["OfdmConfig", "PathLossConfig", "dbm_to_w"]


class PathLossConfig(BaseModel):
    """Log-distance path loss ``PL(d) = ref_loss_dB + 10 n log10(d / ref_distance_m)``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    model: Literal["log_distance"] = "log_distance"
    ref_distance_m: float = Field(1.0, gt=0, le=1e4)
    #: Loss at the reference distance; 38.5 dB is free space at 1 m for a 2 GHz carrier.
    ref_loss_dB: float = Field(38.5, ge=-100, le=300)
    exponent: float = Field(3.0, gt=0, le=10)
    shadowing_std_dB: float = Field(0.0, ge=0, le=50)


class OfdmConfig(BaseModel):
    """Parameters of the analytic OFDM uplink (``network.ofdm`` in a scenario)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    num_rbs: int = Field(50, gt=0, le=4096, description="resource blocks in the band")
    subcarriers_per_rb: int = Field(12, gt=0, le=4096)
    subcarrier_spacing_hz: float = Field(15_000.0, ge=1.0, le=1e7)
    slot_s: float = Field(0.5e-3, ge=1e-6, le=1.0, description="scheduling slot length")
    noise_psd_dBm_per_Hz: float = Field(-174.0, ge=-250, le=0)
    noise_figure_dB: float = Field(7.0, ge=0, le=100)
    pathloss: PathLossConfig = Field(default_factory=PathLossConfig)
    fading: Literal["rayleigh", "none"] = "rayleigh"
    coherence_slots: int = Field(
        1, gt=0, le=10**9, description="slots over which a fading draw holds"
    )
    coherence_rbs: int = Field(1, gt=0, le=4096, description="adjacent RBs sharing a fading draw")
    rate_efficiency: float = Field(1.0, gt=0, le=1, description="fraction of Shannon achieved")
    #: Cap of the spectral efficiency per RB (bit/s/Hz), as the highest MCS imposes;
    #: none by default (pure Shannon). LTE's uplink tops out near 4.
    max_bits_per_s_per_hz: float | None = Field(None, gt=0, le=100)
    #: SNR gap of real modulation and coding to Shannon (``log2(1 + SNR / gap)``); 0 dB
    #: by default. ns-3's LTE AMC uses -ln(5 BER)/1.5 at BER 5e-5, i.e. about 7.4 dB.
    snr_gap_dB: float = Field(0.0, ge=0, le=100)
    max_slots: int = Field(10_000_000, gt=0, le=10**9, description="guard against endless runs")

    @property
    def rb_bandwidth_hz(self) -> float:
        """Bandwidth of one resource block."""
        return self.subcarriers_per_rb * self.subcarrier_spacing_hz

    @property
    def noise_w_per_rb(self) -> float:
        """Thermal noise plus noise figure over one resource block, in watts."""
        return dbm_to_w(self.noise_psd_dBm_per_Hz + self.noise_figure_dB) * self.rb_bandwidth_hz

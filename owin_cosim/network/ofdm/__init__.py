"""The analytic OFDM uplink: resource blocks, slots, path loss, seeded Rayleigh fading,
Shannon rates.
"""

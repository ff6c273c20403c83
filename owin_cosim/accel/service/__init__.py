"""The estimator service: a cost-estimator server and its client over pyzmq, with a
protocol version of its own.
"""

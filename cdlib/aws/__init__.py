"""AWS compute provisioning: security groups, launch templates and Auto Scaling groups.

:mod:`cdlib.aws.compute` holds the specs, the pure readers of API responses and the pure
decisions (state + spec -> changes); :mod:`cdlib.aws.provision` reads, decides and applies
with boto3 clients. The tasks in :mod:`cdlib.tasks.aws_compute` call it. boto3 is imported
only when a client is built.
"""

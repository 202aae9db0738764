"""Where delivered videos go (``--deliver``): a destination that takes a file under a key,
answers whether a key is there, and deletes it, whatever stores it.

- ``destination``: the ``Destination`` protocol, ``open_destination(url, ...)`` (the one place
  that picks a store from a URL), the ``file://`` store (a mounted share) and the object's
  ``Stored`` answer;
- ``s3``: any S3-compatible store through the AWS SDK (boto3, in worker threads), and the one
  place its exceptions become ours (``errors.DeliveryError``, ``errors.DeliveryRefusedError``).
  Imported only when an ``s3://`` destination is opened, so ``orchestrator --help`` does
  without it.

May import the base modules ``errors`` and ``files`` only; ``run`` (the deliver stage) and the
commands that erase or check delivered objects use it. Only ``storage.s3`` imports boto3.
"""

"""Lab 05's data versioning: raw snapshots and feature sets tracked with DVC, pushed to a local remote.

- :mod:`helpers.versioning.datarepo`: the capstone's DVC project (git-less), add + push returning the
  content hash, ``status``, and checkout of an older version by its hash; every DVC call holds one file
  lock, so concurrent tasks queue instead of failing on DVC's repo-wide lock.
"""

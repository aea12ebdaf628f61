"""Local stand-ins for the provider APIs on 127.0.0.1, and synthetic billing to seed them.

What the demo and the tests run against; never used for a real account. Each stand-in speaks its
provider's real wire format, so the pipeline's real client libraries are exercised unchanged.
"""

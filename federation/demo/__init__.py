"""The three-organization disaster-response demo (``accord demo``)."""

"""API routes for shop data (filled in by the REST API work)."""

urlpatterns: list = []

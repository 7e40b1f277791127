"""The catalog web page: FastAPI routes rendering server-side HTML with inline SVG charts."""

"""HTTP endpoints: parsing and rendering only; the rules live in grants/, clients.py, tokens.py."""

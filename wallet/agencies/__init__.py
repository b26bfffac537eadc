"""Agencies and regulators: the OAuth clients of the wallet and what each may ask for."""

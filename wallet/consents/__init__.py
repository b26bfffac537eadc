"""Consent over HTTP: agencies ask, citizens answer and control, webhooks tell agencies."""

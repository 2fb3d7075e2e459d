"""Thin Faust adapters: decode, call the learning core, publish."""

"""Procedural material the project makes itself: the scene renderer and the sample edit."""

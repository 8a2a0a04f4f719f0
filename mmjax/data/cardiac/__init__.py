"""Cardiac differentiation data (reference recipe 004): the Herrmann et al.
(2012) Boolean gene regulatory network of first and second heart field
identity (`network`) and its continuous, noisy simulator (`dynamics`)."""

"""Test kit shipped for users and for legato's own suites: a simulated clock and backend that
run a pipeline in virtual time (:mod:`legato.testing.simulate`)."""

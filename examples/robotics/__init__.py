"""Balancing a MuJoCo cart-pole with a legato stream: sense -> estimate -> plan -> act."""

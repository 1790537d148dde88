"""The enforcement-point SDK: publish agent actions, receive and verify isolation commands."""

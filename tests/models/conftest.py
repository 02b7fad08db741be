import socket

import pytest
import torch


@pytest.fixture
def offline(monkeypatch):
    """Fail loudly if anything opens a network connection or calls torch.hub."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(torch.hub, "load", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


@pytest.fixture(autouse=True)
def single_thread():
    """One intra-op thread: on a shared 2-core machine more threads mostly wait on each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

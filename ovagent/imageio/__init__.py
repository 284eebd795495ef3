"""The agent's image server: disk uploads and downloads over HTTPS with
tickets, ovirt-imageio's API (see server.py), and its tickets (tickets.py)."""

from .server import ImageServer
from .tickets import Ticket, TicketError, TicketStore

__all__ = ["ImageServer", "Ticket", "TicketError", "TicketStore"]

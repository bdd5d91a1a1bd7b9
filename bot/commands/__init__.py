"""The email commands: one module each, registered by importing it here (one explicit line per command)."""

from bot.commands import add as add
from bot.commands import cancel as cancel
from bot.commands import confirm as confirm
from bot.commands import deadlines as deadlines
from bot.commands import digest as digest
from bot.commands import edit as edit
from bot.commands import help as help
from bot.commands import ics as ics
from bot.commands import next as next
from bot.commands import reject as reject
from bot.commands import remind as remind
from bot.commands import reminders as reminders
from bot.commands import show as show
from bot.commands import start as start
from bot.commands import status as status
from bot.commands import stop as stop
from bot.commands import summary as summary
from bot.commands import timezone as timezone
from bot.commands import upcoming as upcoming
from bot.commands.base import REGISTRY, Context, Reply, command

__all__ = ["REGISTRY", "Context", "Reply", "command"]

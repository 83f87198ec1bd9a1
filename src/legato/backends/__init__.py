"""Where calls execute. ``local`` (threads, processes, asyncio) ships; ``ray`` comes next."""

"""E-mail over SMTP (smtplib): plain text, UTF-8, subject = the notification's subject.

channels.smtp: {"host", "port", "from", "user", "password", "starttls": false, "ssl": false}.
"""

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from . import ChannelError


class Channel:
    def __init__(self, name, settings):
        self.name = name
        self.cfg = settings.get("smtp") or {}

    def send(self, endpoint, message):
        c = self.cfg
        if not c:
            raise ChannelError("e-mail without channels.smtp")
        m = EmailMessage()
        m["From"] = c.get("from", "gasguard-notify@localhost")
        m["To"] = endpoint["to"]
        m["Subject"] = message["subject"]
        m["Message-ID"] = make_msgid("gasguard-%s" % message["id"])
        m["X-Gasguard-Delivery"] = str(message["id"])
        m.set_content(message["text"])
        timeout = float(c.get("timeout_s", 10))
        try:
            cls = smtplib.SMTP_SSL if c.get("ssl") else smtplib.SMTP
            with cls(c["host"], int(c["port"]), timeout=timeout) as s:
                if c.get("starttls"):
                    s.starttls()
                if c.get("user"):
                    s.login(c["user"], c.get("password", ""))
                refused = s.send_message(m)
        except (smtplib.SMTPException, OSError) as e:
            raise ChannelError("SMTP %s:%s: %s" % (c["host"], c["port"], e))
        if refused:
            raise ChannelError("SMTP refused %s" % ", ".join(sorted(refused)))

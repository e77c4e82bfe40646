"""Email over SMTP submission (port 587): STARTTLS first, then AUTH, then the message.

Named mail.py, not email.py, which would shadow the standard library's email package.
SMTP replies say themselves whether to retry: 4xx is "try again later", 5xx is "no".
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from alerts.channel import Permanent, Transient, channel
from alerts.message import Message
from configuration.alerts import EmailSettings, MissingSecret
from core.redact import Redactor

log = logging.getLogger(__name__)


@channel("email")
class EmailChannel:
    def __init__(self, settings: EmailSettings, redactor: Redactor):
        self.settings = settings
        self.redactor = redactor

    def send(self, message: Message) -> None:
        password = None
        if self.settings.user is not None:
            try:
                password = self.settings.password()
            except MissingSecret as error:
                raise Permanent(f"could not send: {error}") from None
        mail = self.compose(message)
        error = None
        try:
            self._submit(mail, password)
        except (OSError, smtplib.SMTPException) as raised:  # SMTPException is an OSError; both for clarity
            error = raised
        if error is not None:  # classified outside the except block: nothing chains the original
            raise self._classify(error)

    def compose(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = message.rendered().splitlines()[0]
        mail["From"] = self.settings.sender
        mail["To"] = ", ".join(self.settings.recipients)
        mail["Date"] = formatdate(localtime=True)
        # The same message always has the same Message-ID, so a re-sent copy can be recognised.
        mail["Message-ID"] = f"<{message.key}@trading-maintenance>"
        mail.set_content(message.rendered())
        return mail

    def _submit(self, mail: EmailMessage, password: str | None) -> None:
        # local_hostname given: smtplib would otherwise call getfqdn(), a DNS lookup with no timeout.
        smtp = smtplib.SMTP(self.settings.host, self.settings.port, local_hostname=socket.gethostname(),
                            timeout=self.settings.timeout_seconds)
        try:
            if self.settings.starttls:
                smtp.starttls(context=ssl.create_default_context(
                    cafile=str(self.settings.ca_file) if self.settings.ca_file else None))
            if self.settings.user is not None:
                smtp.login(self.settings.user, password)
            refused = smtp.send_message(mail)  # raises unless at least one recipient was accepted
        except BaseException:
            smtp.close()  # not QUIT: after a timeout it would wait a second timeout for the reply
            raise
        # Not `with smtplib.SMTP(...)`: its __exit__ raises on a bad QUIT reply, which would turn an
        # accepted message into a "failure", then a duplicate. Once sent, sent.
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
        if refused:  # delivered to the others: retrying would send them a duplicate
            log.warning("alert mail %s refused for %s", mail["Message-ID"], ", ".join(sorted(refused)))

    def _classify(self, error: Exception) -> Transient | Permanent:
        text = self.redactor.text
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in error.recipients.values()]
            said = text("; ".join(f"{who}: {code} {_decode(why)}" for who, (code, why) in error.recipients.items()))
            kind = Transient if codes and all(400 <= code < 500 for code in codes) else Permanent
            return kind(f"recipients refused: {said}")
        if isinstance(error, smtplib.SMTPResponseException):  # auth, sender, data, connect, helo
            what = "authentication refused" if isinstance(error, smtplib.SMTPAuthenticationError) else "refused"
            said = text(f"{what}: {error.smtp_code} {_decode(error.smtp_error)}")
            return Transient(said) if 400 <= error.smtp_code < 500 else Permanent(said)
        if isinstance(error, smtplib.SMTPNotSupportedError):  # e.g. no STARTTLS: never log in in clear
            return Permanent(text(f"server does not support it: {error}"))
        if isinstance(error, ssl.SSLCertVerificationError):
            return Permanent(text(f"server certificate not trusted: {error.verify_message or error}"))
        if isinstance(error, (TimeoutError, socket.timeout)):
            return Transient(f"no answer within {self.settings.timeout_seconds:g}s")
        return Transient(text(f"cannot reach {self.settings.host}:{self.settings.port}: "
                              f"{type(error).__name__}: {error}"))


def _decode(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

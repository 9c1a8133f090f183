"""aecflow notifier that sends events to Amazon SQS in batches, FIFO-aware.

aioboto3 is imported only when an SQS destination starts, so loading the plugin stays cheap.
"""

from aecflow_notify_sqs.config import SqsConfig
from aecflow_notify_sqs.notifier import SqsNotifier

__all__ = ["SqsConfig", "SqsNotifier"]

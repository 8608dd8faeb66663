"""1:1 chat: the message flow with two-phase acks, offline inbox, recall and typing relay."""

"""Contacts, privacy lists and conversations: the socket events they emit (storage: glide.store.contacts,
glide.store.conversations; routes: glide.api.contacts, glide.api.privacy, glide.api.conversation)."""

"""Direct-conversation keys become unambiguous: "<length of first>:<first>|<second>".

The old "a|b" let `org1|u100`+`zed` and `org1`+`u100|zed` share a key, so the second
pair could never talk. Each key is recomputed from the conversation's two participants,
as `storage.messages.direct_key` computes it (ids in code-point order, length in
characters). Two steps, because PostgreSQL checks the unique constraint row by row:
every key first moves to a placeholder that holds no `|` (old and new keys both do),
then to its new value.
"""

STATEMENTS = [
    "UPDATE conversations SET direct_key = 'migrating:' || id WHERE direct_key IS NOT NULL",
]

_NEW_KEY = """UPDATE conversations SET direct_key = (
    SELECT CAST(length(min({user})) AS TEXT) || ':' || min({user}) || '|' || max({user})
    FROM participants WHERE participants.conversation_id = conversations.id
) WHERE direct_key LIKE 'migrating:%'"""

# SQLite compares text byte by byte (UTF-8), which is code-point order as in Python;
# PostgreSQL needs the "C" collation for the same order.
SQLITE = [_NEW_KEY.format(user="user_id")]
POSTGRES = [_NEW_KEY.format(user='user_id COLLATE "C"')]

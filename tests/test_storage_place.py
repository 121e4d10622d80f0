"""Where data is kept, and whether Community Cloud's disk wipe would take it."""

from llmapp.settings import resolve
from llmapp.storage_place import local_storage, on_community_cloud


def test_cloud_is_recognised_by_its_checkout_folder():
    assert on_community_cloud("/mount/src/llmapp")
    assert not on_community_cloud("/home/me/llmapp")


def test_local_documents_and_conversations_are_reported_with_the_setting_that_moves_them():
    settings = resolve(environ={}, env_file={})
    docs = local_storage(settings, "documents")
    assert docs.where == ".llmapp/chroma" and docs.setting == "CHROMA_HOST"
    talks = local_storage(settings, "conversations")
    assert talks.where == ".llmapp/conversations.sqlite3"
    assert talks.setting == "LLMAPP_DATABASE_URL"


def test_data_on_a_server_is_not_reported():
    settings = resolve(environ={"CHROMA_HOST": "chroma.internal",
                                "LLMAPP_DATABASE_URL": "postgresql+psycopg://u:p@db/llmapp"},
                       env_file={})
    assert local_storage(settings, "documents") is None
    assert local_storage(settings, "conversations") is None

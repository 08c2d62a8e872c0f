"""The teacher LLM: an OpenAI-compatible client that never pays twice, and an offline rules teacher."""

from reason4rec.teacher.core import Teacher, TeacherAnswer, TeacherRequest, complete_with_guard

__all__ = ["Teacher", "TeacherAnswer", "TeacherRequest", "complete_with_guard"]

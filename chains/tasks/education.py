"""Education chains: leveled quizzes with a checked answer key, language dialogues, lesson plans."""

from __future__ import annotations

import re
from typing import Any, Literal

from langchain_core.runnables import Runnable
from pydantic import BaseModel, Field, ValidationInfo, model_validator

from chains.chain import ModelLike, TextOutput
from chains.tasks import TaskInput, exact_items, sections, task_chain

__all__ = [
    "LANGUAGE_DIALOGUE",
    "LESSON_PLAN",
    "QUIZ",
    "LanguageDialogue",
    "LanguageDialogueInput",
    "LessonPlan",
    "LessonPlanInput",
    "Question",
    "Quiz",
    "QuizInput",
    "language_dialogue",
    "lesson_plan",
    "quiz",
]

QUIZ = "education/quiz@^1"
LANGUAGE_DIALOGUE = "education/language_dialogue@^1"
LESSON_PLAN = "education/lesson_plan@^1"
QuestionType = Literal["multiple_choice", "short_answer", "true_false"]


def _inputs(info: ValidationInfo) -> dict[str, Any]:
    return (info.context or {}).get("inputs", {})


class QuizInput(TaskInput):
    """What the quiz tests, for whom, and optionally the material it must be based on."""

    topic: str
    grade_level: int = Field(ge=1, le=12)
    num_questions: int | None = Field(None, ge=1, le=20)
    difficulty: Literal["easy", "medium", "hard", "mixed"] | None = None
    question_types: list[QuestionType] | None = None
    context: str | None = None


class Question(BaseModel):
    """One question with its answer key; the key is checked against the question type and its choices."""

    question: str = Field(min_length=1)
    type: QuestionType
    options: list[str] = Field(default_factory=list, description="The choices (none for short answers).")
    answer: str = Field(min_length=1)
    explanation: str = Field(min_length=1)
    difficulty: Literal["easy", "medium", "hard"]

    @property
    def choices(self) -> list[str]:
        """The answer choices (``options`` in the prompt's schema)."""
        return self.options

    @model_validator(mode="after")
    def _answer_key(self) -> Question:
        if self.type == "multiple_choice":
            if len(self.options) < 2 or len(set(self.options)) != len(self.options):
                raise ValueError(f"multiple choice {self.question!r} needs at least 2 distinct choices")
            if self.answer not in self.options:
                raise ValueError(f"the answer {self.answer!r} to {self.question!r} is not one of its choices")
        elif self.type == "true_false":
            if self.options != ["True", "False"] or self.answer not in ("True", "False"):
                raise ValueError(f"true/false {self.question!r} needs choices ['True', 'False'] and one as answer")
        elif self.options:
            raise ValueError(f"short answer {self.question!r} must have no choices")
        return self


class Quiz(BaseModel):
    """A quiz: questions of the requested types and count, each with a consistent answer key."""

    topic: str = Field(min_length=1)
    grade_level: int = Field(ge=1, le=12)
    questions: list[Question] = Field(min_length=1, max_length=20)

    @classmethod
    def response_schema(cls, inputs: dict[str, Any]) -> dict[str, Any]:
        """The schema with exactly the number of questions asked for."""
        return exact_items(cls, "questions", inputs.get("num_questions"))

    @model_validator(mode="after")
    def _as_asked(self, info: ValidationInfo) -> Quiz:
        inputs = _inputs(info)
        wanted = inputs.get("num_questions")
        if isinstance(wanted, int) and len(self.questions) != min(max(wanted, 1), 20):
            raise ValueError(f"{len(self.questions)} questions were written; {min(max(wanted, 1), 20)} were asked for")
        types = inputs.get("question_types")
        stray = sorted({q.type for q in self.questions} - set(types)) if types else []
        if stray:
            raise ValueError(f"question types {stray} were not asked for (asked: {types})")
        return self


def quiz(model: ModelLike = None, *, ref: str = QUIZ, **chain_kwargs: Any) -> Runnable[QuizInput, Quiz]:
    """``QuizInput -> Quiz``; with ``retriever=``, the quiz is grounded in retrieved passages (its ``context``)."""
    return task_chain(ref, QuizInput, Quiz, name="education.quiz", model=model, **chain_kwargs)


class LanguageDialogueInput(TaskInput):
    """A scenario, level and grammar point for a language-learning dialogue."""

    target_language: str
    cefr_level: Literal["A1", "A2", "B1", "B2", "C1", "C2"]
    scenario: str
    grammar_point: str
    native_language: str | None = None
    dialogue_lines: int | None = Field(None, ge=1)
    exercise_items: int | None = Field(None, ge=1)
    include_translation: bool | None = None


def _numbered(body: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"(?m)^\s*\d+[.)]\s*(.+)$", body)]


class LanguageDialogue(TextOutput):
    """The lesson in sections; the grammar exercise has one answer per item."""

    dialogue: str = ""
    grammar: str = ""
    exercise: list[str] = Field(default_factory=list)
    answer_key: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "text" not in data:
            return data
        found = sections(str(data["text"]))
        return {
            "dialogue": found.get("Dialogue", ""),
            "grammar": found.get("Grammar focus", ""),
            "exercise": _numbered(found.get("Exercise", "")),
            "answer_key": _numbered(found.get("Answer key", "")),
            **data,
        }

    @model_validator(mode="after")
    def _complete(self) -> LanguageDialogue:
        if not self.dialogue:
            raise ValueError("the lesson has no '## Dialogue' section")
        if not self.exercise:
            raise ValueError("the lesson has no numbered items under '## Exercise'")
        if len(self.answer_key) != len(self.exercise):
            raise ValueError(
                f"the exercise has {len(self.exercise)} items but the answer key {len(self.answer_key)} answers"
            )
        return self


def language_dialogue(
    model: ModelLike = None, *, ref: str = LANGUAGE_DIALOGUE, **chain_kwargs: Any
) -> Runnable[LanguageDialogueInput, LanguageDialogue]:
    """``LanguageDialogueInput -> LanguageDialogue`` (exercise and answer key checked)."""
    return task_chain(
        ref, LanguageDialogueInput, LanguageDialogue, name="education.language_dialogue", model=model, **chain_kwargs
    )


class LessonPlanInput(TaskInput):
    """Subject, topic, grade and objectives of one lesson."""

    subject: str
    topic: str
    grade_level: int = Field(ge=1, le=12)
    objectives: list[str] = Field(min_length=1)
    duration_minutes: int | None = Field(None, ge=20)
    prior_knowledge: str | None = None
    class_profile: str | None = None
    materials_available: list[str] | None = None
    standards: list[str] | None = None


LESSON_SECTIONS = (
    "Learning objectives",
    "Materials",
    "Warm-up",
    "Direct instruction",
    "Guided practice",
    "Assessment",
    "Differentiation",
)


class LessonPlan(TextOutput):
    """A plan with every required section (``sections`` maps heading to body)."""

    sections: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, dict) and "text" in data and "sections" not in data:
            return {**data, "sections": {k.split(" (")[0]: v for k, v in sections(str(data["text"])).items()}}
        return data

    @model_validator(mode="after")
    def _complete(self) -> LessonPlan:
        missing = [s for s in LESSON_SECTIONS if s not in self.sections]
        if missing:
            raise ValueError(f"the plan lacks the sections {missing} (each a '## ' heading)")
        return self


def lesson_plan(
    model: ModelLike = None, *, ref: str = LESSON_PLAN, **chain_kwargs: Any
) -> Runnable[LessonPlanInput, LessonPlan]:
    """``LessonPlanInput -> LessonPlan`` (required sections checked)."""
    return task_chain(ref, LessonPlanInput, LessonPlan, name="education.lesson_plan", model=model, **chain_kwargs)

"""Every sentence of ``forkshare demo``, in English and in Japanese: the tour's one message table.

:class:`TourText` has one field per message; :data:`ENGLISH` and :data:`JAPANESE` fill every
field, so a message missing in one language is a type error, not a runtime surprise.
:func:`choose_language` picks the language from ``--lang`` or, without it, from the locale
variables, as gettext would (``LC_ALL``, then ``LC_MESSAGES``, then ``LANG``).

The Japanese is written for engineers in the docs' style (である調) and with the docs' glossary
(オープンファイル記述, accept キュー, マスター, ワーカー); system calls, flags, fact identifiers and
property names stay as they are in both languages.

Discussion:
    *A table, not gettext.* The tour has about forty messages, each with placeholders, and two
    languages. gettext would add a build step (``msgfmt``), ``.mo`` files in the wheel and a
    runtime lookup that silently falls back to English when a message is missing. A frozen
    dataclass per language keeps both versions of a sentence a few lines apart, lets mypy check
    that each language has every message, and lets a test check that the Japanese one is
    Japanese.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from forkshare.conformance.observe.kernel_picture import ENGLISH as ENGLISH_WORDS
from forkshare.conformance.observe.kernel_picture import JAPANESE as JAPANESE_WORDS
from forkshare.conformance.observe.kernel_picture import PictureWords

Language = Literal["en", "ja"]
LANGUAGES: tuple[Language, ...] = ("en", "ja")
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")
"""Where the language comes from without ``--lang``, first set one first (POSIX precedence)."""


def choose_language(explicit: str | None, environ: Mapping[str, str]) -> Language:
    """``explicit`` when given; else Japanese when the first locale variable that is set names
    it (``ja_JP.UTF-8``, ``ja``); else English."""
    if explicit in LANGUAGES:
        return "ja" if explicit == "ja" else "en"
    for name in LOCALE_VARIABLES:
        value = environ.get(name, "")
        if value:
            return "ja" if value.split(".")[0].split("_")[0] == "ja" else "en"
    return "en"


@dataclass(frozen=True, slots=True)
class TourText:
    """The tour's messages in one language; ``{…}`` fields are filled in where they are used."""

    title: str
    question: str
    plan: str
    part_titles: tuple[str, str, str, str, str, str]
    working: tuple[str, str, str, str, str, str]
    """What each part is doing while the reader waits (the progress line)."""
    server_line: str
    """``{command}``."""
    trace_intro: str
    strace_missing: str
    strace_unusable: str
    """``{reason}``."""
    trace_clone_note: str
    rules: tuple[tuple[str, str], ...]
    """The tracer's rule names with what each checks."""
    picture_intro: str
    picture_shared: str
    """``{descriptors}``, ``{processes}``."""
    picture_master_only: str
    picture_per_slot: str
    """``{sockets}``."""
    connections_intro: str
    """``{count}``."""
    connections_columns: tuple[str, str, str, str]
    not_seen: str
    accepts_line: str
    """``{who}``, ``{count}``."""
    eagain: str
    """``{count}``."""
    more_calls: str
    """``{count}``, ``{name}``."""
    connections_takeaway: str
    model_intro: str
    """``{variant}``, ``{seen_in}``."""
    model_violates: str
    """``{invariant}``, ``{claim}``."""
    claims: tuple[tuple[str, str], ...]
    """Invariant names with their claim in this language (else the model's own docstring)."""
    model_legend: str
    model_explanation: str
    model_no_violation: str
    """``{invariant}``."""
    model_explored: str
    """``{states}``, ``{seconds}``."""
    proofs_intro: str
    proofs_summary: str
    """``{proved}``, ``{obligations}``, ``{refuted}``, ``{variants}``, ``{seconds}``."""
    proofs_not_proved: str
    """``{count}``, ``{names}``."""
    proofs_did_not_run: str
    """``{reason}``."""
    verify_intro: str
    """``{target}``."""
    verify_summary: str
    """``{steps}``, ``{seconds}``, ``{properties}``."""
    verify_violation: str
    """``{property}``."""
    verify_did_not_run: str
    """``{reason}``."""
    skipped: str
    """``{option}``."""
    timed_out: str
    """``{seconds}``."""
    answer_title: str
    answer: str
    elapsed: str
    """``{seconds}``."""
    next_steps: str
    words: PictureWords

    def claim(self, invariant: str, fallback: str) -> str:
        """The claim of ``invariant`` in this language, or ``fallback`` (the model's English)."""
        return dict(self.claims).get(invariant, fallback)

    def rule(self, name: str) -> str:
        """What the tracer's rule ``name`` checks, in this language."""
        return dict(self.rules).get(name, name)


ENGLISH = TourText(
    title="forkshare demo",
    question="How do the workers share the master's listening socket, and with which system calls?",
    plan="This tour answers on a live server, in six parts: its system calls, the kernel objects "
    "it shares, who accepts each connection; then what the model, the proofs and the verifier "
    "say about it.",
    part_titles=(
        "The system calls, by role",
        "What is shared: the kernel objects",
        "Who accepts each connection",
        "The model: an unsafe design's counterexample",
        "The proofs",
        "The verifier against the real server",
    ),
    working=(
        "starting the reference server …",
        "reading /proc and the sockets …",
        "connecting …",
        "exploring the model …",
        "running the proof suite …",
        "verifying the server …",
    ),
    server_line="Server: {command}",
    trace_intro="The reference server runs under strace. These are the calls that create and share "
    "its listening socket, from the real trace: the master creates, binds and listens, then "
    "forks; the workers inherit its descriptors and never bind one themselves.",
    strace_missing="strace is not installed (apt-get install strace), so this part is skipped; the "
    "server runs without it and the tour goes on.",
    strace_unusable="strace cannot trace here ({reason}), so this part is skipped; the server runs "
    "without it and the tour goes on.",
    trace_clone_note="fork() shows as clone(): glibc implements it that way. The workers' descriptor "
    "has the master's number because fork() copies the descriptor table (K1).",
    rules=(
        ("master_listens_before_fork", "the master listened before it forked its workers"),
        ("workers_never_bind", "no worker called bind() or listen()"),
    ),
    picture_intro="The same server, read from /proc while it waits: each process's descriptor, the "
    "open file description it points at, the socket behind that, and the socket's accept queue. "
    "Options are read with getsockopt on a copy of the descriptor (pidfd_getfd).",
    picture_shared="{descriptors} descriptors in {processes} processes, but one open file "
    "description, one socket and one accept queue: fork() copied the descriptor, not the socket "
    "(K1).",
    picture_master_only="Only the master holds the listening socket: it accepts each connection "
    "and passes it to a worker over a Unix socket (SCM_RIGHTS, K16).",
    picture_per_slot="{sockets} sockets on one address, one per worker slot, each with its own "
    "accept queue: a SO_REUSEPORT group (K7). The master keeps every one of them.",
    connections_intro="Now {count} clients connect, one after the other. For each, /proc shows "
    "which process holds the accepted connection, and the server's reply names the worker's slot.",
    connections_columns=("#", "client", "accepted by (/proc)", "the server's reply"),
    not_seen="not seen",
    accepts_line="strace: {who} called accept4 {count} time(s) with success",
    eagain="; {count} more returned EAGAIN: the queue was empty by then",
    more_calls="… and {count} more {name} (the worker re-registers now and then: DEL, then ADD)",
    connections_takeaway="Each connection was accepted exactly once, in a single accept4(): the "
    "kernel removes it from the queue it waits in. What the sharing mode changes is who is woken "
    "to accept it (K3, K5, K6).",
    model_intro="The model knows the unsafe designs real servers have shipped. Here is "
    "{variant} ({seen_in}): each worker creates its own SO_REUSEPORT socket after fork. The "
    "explorer visits every reachable state and prints the shortest way to break a property.",
    model_violates="violates {invariant}: {claim}",
    claims=(),
    model_legend="Each step: the action, then the state after it — processes with the sockets they "
    "hold in braces | sockets with their queues | connections.",
    model_explanation="The dead worker's socket had no other holder, so closing it reset the "
    "connection queued on it (K8). The reference server's master creates and keeps every "
    "reuseport socket, so a worker's death never closes one.",
    model_no_violation="The explorer found no violation of {invariant}: the model has changed; run "
    "forkshare explore --all.",
    model_explored="{states} states explored in {seconds} s.",
    proofs_intro="The explorer checks small sizes. z3 proves the invariants for any number of "
    "workers, connections and steps, and finds a counterexample for every unsafe design.",
    proofs_summary="Proved {proved} of {obligations} obligations (initial state and every action, "
    "for every invariant) and refuted {refuted} of {variants} unsafe designs, in {seconds} s.",
    proofs_not_proved="{count} obligation(s) not proved: {names}. forkshare prove shows them.",
    proofs_did_not_run="The proof suite gave no result ({reason}). forkshare prove shows why.",
    verify_intro="Last, the verifier drives the real server ({target}) through random steps — "
    "clients, signals, killed workers — and after each step compares what /proc and the clients "
    "show with what the model allows.",
    verify_summary="{steps} steps in {seconds} s; {properties} properties checked after each: the "
    "server conforms.",
    verify_violation="The server violated {property}. forkshare verify prints the steps.",
    verify_did_not_run="The verifier gave no result ({reason}).",
    skipped="Skipped ({option}).",
    timed_out="did not finish within {seconds} s",
    answer_title="The answer",
    answer="The master calls socket(), setsockopt(), bind() and listen() once, then forks. fork() "
    "copies the descriptor, not the socket: every worker's descriptor points at the same open "
    "file description, hence the same socket and the same accept queue. The kernel gives each "
    "connection to exactly one accept4(); the sharing mode decides only who is woken.",
    elapsed="The tour took {seconds} s.",
    next_steps="Next: forkshare inspect --port PORT on any server (nginx too), "
    "forkshare trace -- COMMAND, and the docs' explanation page.",
    words=ENGLISH_WORDS,
)
"""The tour in English."""

JAPANESE = TourText(
    title="forkshare デモ",
    question="ワーカーはマスターのリスニングソケットをどう共有しているのか。どのシステムコールで?",
    plan="このツアーは動いているサーバで答える。6 部構成で、システムコール、共有されているカーネル"
    "オブジェクト、各接続を誰が accept するかを見たあと、モデル、証明、検証器がこのサーバについて何を"
    "言うかを見る。",
    part_titles=(
        "役割ごとのシステムコール",
        "共有されているもの: カーネルオブジェクト",
        "各接続を accept するのは誰か",
        "モデル: 危険な設計の反例",
        "証明",
        "本物のサーバに対する検証器",
    ),
    working=(
        "リファレンスサーバを起動している …",
        "/proc とソケットを読んでいる …",
        "接続している …",
        "モデルを探索している …",
        "証明スイートを実行している …",
        "サーバを検証している …",
    ),
    server_line="サーバ: {command}",
    trace_intro="リファレンスサーバを strace の下で動かしている。以下は実際のトレースから取り出した、"
    "リスニングソケットを作って共有するシステムコールである。マスターが作成、bind、listen を行って"
    "から fork し、ワーカーはそのディスクリプタを受け継ぐだけで、自分では bind しない。",
    strace_missing="strace がインストールされていない (apt-get install strace) ので、この部は飛ばす。"
    "サーバは strace なしで起動し、ツアーは続く。",
    strace_unusable="ここでは strace でトレースできない ({reason}) ので、この部は飛ばす。サーバは strace "
    "なしで起動し、ツアーは続く。",
    trace_clone_note="fork() は clone() として現れる。glibc がそのように実装しているからである。"
    "ワーカーのディスクリプタ番号がマスターと同じなのは、fork() がディスクリプタテーブルを"
    "コピーするからである (K1)。",
    rules=(
        ("master_listens_before_fork", "マスターはワーカーを fork する前に listen した"),
        ("workers_never_bind", "どのワーカーも bind() も listen() も呼んでいない"),
    ),
    picture_intro="同じサーバを、待機中に /proc から読んだものである。各プロセスのディスクリプタ、"
    "それが指すオープンファイル記述、その先のソケット、そしてソケットの accept キュー。"
    "オプションはディスクリプタのコピー (pidfd_getfd) に getsockopt して読んでいる。",
    picture_shared="{processes} プロセスにディスクリプタが {descriptors} 個あるが、オープンファイル記述"
    "もソケットも accept キューも 1 つだけである。fork() がコピーしたのはディスクリプタであって、"
    "ソケットではない (K1)。",
    picture_master_only="リスニングソケットを持つのはマスターだけである。マスターが各接続を accept "
    "し、Unix ソケット経由でワーカーに渡す (SCM_RIGHTS、K16)。",
    picture_per_slot="1 つのアドレスにソケットが {sockets} 個あり、ワーカーのスロットごとに 1 つ、"
    "それぞれが自分の accept キューを持つ。SO_REUSEPORT グループである (K7)。マスターはそのすべてを"
    "持ち続ける。",
    connections_intro="ここでクライアントが {count} 個、順に接続する。各接続について、accept された"
    "接続をどのプロセスが持っているかを /proc で調べ、サーバの応答からワーカーのスロットを読む。",
    connections_columns=("#", "クライアント", "accept したプロセス (/proc)", "サーバの応答"),
    not_seen="見えず",
    accepts_line="strace: {who} の accept4 成功は {count} 回",
    eagain="。ほかに {count} 回は EAGAIN を返した (その時点でキューは空だった)",
    more_calls="… ほかに {name} が {count} 回 (ワーカーはときどき登録し直す。DEL してから ADD)",
    connections_takeaway="どの接続もちょうど 1 回、1 回の accept4() で accept された。カーネルは接続を"
    "待っているキューから取り除く。共有のモードが変えるのは、accept するために誰を起こすかである "
    "(K3、K5、K6)。",
    model_intro="モデルは実在のサーバが出荷してきた危険な設計を知っている。ここでは {variant} "
    "({seen_in}) を見る。各ワーカーが fork の後で自分の SO_REUSEPORT ソケットを作る設計である。"
    "探索器は到達可能な状態をすべて訪れ、性質を破る最短の手順を表示する。",
    model_violates="{invariant} に違反: {claim}",
    claims=(
        (
            "no_queued_connection_lost",
            "キューに入った接続は、ワーカーの死やリロードでリセットされない。キューを捨てて"
            "よいのはシャットダウンだけである。",
        ),
    ),
    model_legend="各ステップは、アクションとその後の状態である。波括弧の中は各プロセスが持つソケット、"
    "| の後はソケットとそのキュー、最後は接続。",
    model_explanation="死んだワーカーのソケットには他に持ち主がいなかったので、それを閉じたことで"
    "キューの接続がリセットされた (K8)。リファレンスサーバではマスターがすべての reuseport ソケットを"
    "作って持ち続けるので、ワーカーが死んでもソケットは閉じない。",
    model_no_violation="探索器は {invariant} の違反を見つけなかった。モデルが変わったので、"
    "forkshare explore --all を実行してほしい。",
    model_explored="{states} 状態を {seconds} 秒で探索した。",
    proofs_intro="探索器が調べるのは小さなサイズだけである。z3 は任意の数のワーカー、接続、"
    "ステップについて不変条件を証明し、危険な設計にはそれぞれ反例を見つける。",
    proofs_summary="{obligations} 個の証明責務 (すべての不変条件について、初期状態と各アクション) の"
    "うち {proved} 個を証明し、危険な設計 {variants} 個のうち {refuted} 個を反証した。所要 "
    "{seconds} 秒。",
    proofs_not_proved="証明できなかった責務が {count} 個ある: {names}。forkshare prove で詳細が見られる。",
    proofs_did_not_run="証明スイートは結果を出さなかった ({reason})。forkshare prove で理由が見られる。",
    verify_intro="最後に、検証器が本物のサーバ ({target}) をランダムな手順で動かす。クライアント、"
    "シグナル、ワーカーの kill などである。各ステップの後、/proc とクライアントから見えるものが"
    "モデルの許す範囲にあるかを比べる。",
    verify_summary="{steps} ステップを {seconds} 秒で実行し、各ステップの後に {properties} 個の性質を"
    "確かめた。サーバは仕様に適合している。",
    verify_violation="サーバは {property} に違反した。forkshare verify で手順が見られる。",
    verify_did_not_run="検証器は結果を出さなかった ({reason})。",
    skipped="飛ばした ({option})。",
    timed_out="{seconds} 秒以内に終わらなかった",
    answer_title="答え",
    answer="マスターは socket()、setsockopt()、bind()、listen() を一度だけ呼び、それから fork する。"
    "fork() がコピーするのはディスクリプタであって、ソケットではない。どのワーカーのディスクリプタも"
    "同じオープンファイル記述を指し、したがって同じソケット、同じ accept キューを指す。カーネルは各"
    "接続をちょうど 1 回の accept4() に渡す。共有のモードが決めるのは、誰を起こすかだけである。",
    elapsed="ツアーの所要時間は {seconds} 秒。",
    next_steps="次は: 任意のサーバ (nginx も) に forkshare inspect --port PORT、"
    "forkshare trace -- COMMAND、そしてドキュメントの解説ページ。",
    words=JAPANESE_WORDS,
)
"""The tour in Japanese."""

TEXTS: dict[Language, TourText] = {"en": ENGLISH, "ja": JAPANESE}

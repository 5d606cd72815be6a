"""Write a synthetic archive of N articles in the seed format, for benchmarks.

    python bench/make_corpus.py 10000 bench/corpus/10k

Deterministic for a given N (seeded). Ten sections, dates spread over two years, 0 to 4
images per article (most through the images.weserv.nl proxy), articles of 3–8 KB like
real ones, and about 1% of stories captured a second time a day later: the same URL,
title, `<time>` and text, a header one day later and a correction paragraph at the end.
The text is generated from a fixed vocabulary, not copied.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

SECTIONS = ("world", "china", "business", "opinion", "technology", "culture", "science",
            "health", "sports", "education")
# Common characters and words; sentences are random strings of these.
WORDS = (  # noqa: SIM905
         "我们 他们 政府 经济 国际 城市 居民 记者 报道 发展 市场 企业 研究 教育 医院 学校 "
         "科技 文化 历史 社会 问题 政策 会议 官员 专家 表示 认为 指出 增长 下降 计划 项目 "
         "今年 去年 上周 周三 北京 上海 广州 深圳 香港 台北 欧洲 美国 日本 亚洲 非洲 世界 "
         "人们 工人 农民 学生 老师 家庭 孩子 老人 公司 银行 工厂 数据 网络 手机 平台 能源 "
         "环境 气候 河流 山区 交通 铁路 机场 港口 价格 工资 房价 消费 出口 进口 投资 合作").split()
ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 2 * 365 * 86400


def sentence(rng: random.Random) -> str:
    return "".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))) + "。"


def paragraph(rng: random.Random) -> str:
    return "".join(sentence(rng) for _ in range(rng.randint(2, 5)))


def image_url(rng: random.Random, n: int, k: int, when: datetime) -> str:
    ext = rng.choice((".jpg", ".jpg", ".jpg", ".png", ".webp"))
    path = f"static01.nyt.com/images/{when:%Y/%m/%d}/multimedia/a{n}-{k}/a{n}-{k}-master1050{ext}"
    return f"https://images.weserv.nl/?url={path}" if rng.random() < 0.8 else f"https://{path}"


def article(rng: random.Random, n: int, when: datetime, correction: bool = False,
            captured: datetime | None = None) -> str:
    """Article n, first published at `when` (its URL, title and `<time>` follow from it);
    the header says `captured` (default: `when`). With the same rng state, a call with
    `correction=True` and a later `captured` gives the same story re-captured: the same
    URL, title, `<time>`, images and text, plus a correction paragraph."""
    section = SECTIONS[n % len(SECTIONS)]
    local = (when - timedelta(minutes=rng.randint(5, 90))).astimezone(ZONE)
    url = f"https://cn.nytimes.com/{section}/{local:%Y%m%d}/story-{n}/"
    title = "".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9)))
    images = rng.choice((0, 1, 1, 2, 3, 4))
    parts = [f"<address>REPORTER {n % 97}</address>",
             f'<time pudate="{local:%Y-%m-%d %H:%M:%S}" datetime="{local:%Y-%m-%d %H:%M:%S}">'
             f"{local.year}年{local.month}月{local.day}日</time>"]
    if images:
        parts.append(f'<figure><img src="{image_url(rng, n, 0, local)}" width="1050" height="700">'
                     f"<figcaption>{sentence(rng)} <cite>摄影 {n % 13}</cite></figcaption></figure>")
    body = [f"<p>{paragraph(rng)}</p>" for _ in range(rng.randint(6, 14))]
    for k in range(1, images):
        body.insert(rng.randint(1, len(body)), f'<p><img src="{image_url(rng, n, k, local)}">'
                    f'<small style="color: #999;">{sentence(rng)}</small></p>')
    if correction:
        body.append("<p>更正：本文此前版本有误，现已更正。</p>")
    parts.append("<section>" + "".join(body) + "</section>")
    parts.append(f'<footer><p>翻译：纽约时报中文网</p><a href="https://www.nytimes.com/{local:%Y/%m/%d}/'
                 f'{section}/story-{n}.html">点击查看本文英文版。</a></footer>')
    header = int((captured or when).timestamp() * 1000)
    return f"<!--{header}-->\n[{title}]({url})\n------\n\n" + "".join(parts)


def stories(count: int, seed: int = 1) -> Iterator[tuple[str, str]]:
    """(file name, text) of every file of the archive of `count` articles."""
    rng = random.Random(seed)
    for n in range(count):
        when = START + timedelta(seconds=rng.randrange(SPAN_SECONDS))
        state = rng.getstate()  # replayed for a re-capture: the same story, word for word
        yield f"{n:07d}.txt", article(rng, n, when)
        if rng.random() < 0.01:  # re-captured a day later, with a correction
            again = random.Random()
            again.setstate(state)
            yield (f"{n:07d}-recapture.txt",
                   article(again, n, when, correction=True, captured=when + timedelta(days=1)))


def write_corpus(count: int, folder: Path, seed: int = 1) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in stories(count, seed):
        (folder / name).write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int)
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    write_corpus(args.count, args.folder)


if __name__ == "__main__":
    main()

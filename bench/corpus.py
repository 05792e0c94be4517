"""A synthetic, deterministic news corpus served over HTTP on many loopback hosts.

Used by ``bench/pipeline.py``; importable on its own::

    from bench.corpus import Corpus, CorpusServers

    corpus = Corpus(feeds=50, articles=2000, seed=7)
    with CorpusServers(corpus, latency_s=0.1, per_host=4) as servers:
        print(servers.feed_urls()[:3])

What it holds
    ``feeds`` feeds, one per host 127.0.0.2, 127.0.0.3, … (one site each), and ``articles``
    article pages spread evenly over them. Each feed is an RSS 2.0 document listing its
    articles (title, link, guid, pubDate, description). Each page is 60–150 KB of HTML that
    looks like a news site's: a ``<head>`` with Open Graph / ``article:published_time`` /
    canonical tags, inline scripts and a large analytics/ad-config blob, a JSON-LD
    ``NewsArticle``, a mega-menu, a cookie banner, "related" and "most read" link lists, a
    comments section and a link-heavy footer. The article itself (400–1,200 words) is in
    ``<article><p>…``.

    Body text comes from seeded sentence templates with many slots and inline alternatives,
    so no two articles share long word runs (the monitor clusters stories by 5-word shingles;
    unrelated articles must not look like copies). A share of articles (``on_topic``, default
    4 %) are about the monitor's topics – Iran's ballistic missiles and the JCPOA nuclear
    talks – and a share (``syndicated``, default 3 %) are copies of another feed's story on a
    second host under its own URL and headline: a third of those verbatim (the monitor should
    record them as same-text aliases), the rest lightly edited (same story, new article).

Determinism and memory
    Everything is a function of the constructor's arguments. Only the small per-article
    specs (title, URL path, date …) and per-site boilerplate are kept; each page is rendered
    on request from its index and the seed, so 10,000 pages do not mean 1 GB in memory.

Serving
    :class:`CorpusServers` runs one ``ThreadingHTTPServer`` per host in a *separate process*
    (so the benchmark's own RSS is the monitor's alone), each with a fixed per-response
    latency and a per-host connection limit: a semaphore in the handler, so requests beyond
    it queue as they would at a busy origin. It serves ``/robots.txt`` (allow all), the feed
    and the pages, with Content-Type and Content-Length, over HTTP/1.1 keep-alive.
"""

from __future__ import annotations

import bisect
import json
import multiprocessing
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape as xml_escape

FEED_PATH = "/feeds/latest.xml"
ROBOTS = b"User-agent: *\nAllow: /\n"
TOPIC_IDS = ("iran-missiles", "jcpoa-talks")
# A third of syndicated copies are verbatim (same text: an alias), the rest are edited.
VERBATIM_SHARE = 1 / 3

# --- vocabulary ------------------------------------------------------------------------------
# Slot lists are long and fixed phrases short, so that two articles rarely share a run of
# five words unless one copies the other.
# fmt: off
FIRST = ["Anna", "Marek", "Sofia", "Daniel", "Leila", "Tomas", "Grace", "Ivan", "Mei", "Oliver", "Priya",
         "Jonas", "Elena", "Samuel", "Nadia", "Lucas", "Hana", "Mateo", "Ingrid", "Kofi", "Aisha", "Pavel",
         "Clara", "Diego", "Yuki", "Emil", "Rosa", "Felix", "Amara", "Viktor", "Lena", "Omar", "Julia"]
LAST = ["Novak", "Okafor", "Lindqvist", "Moreau", "Castillo", "Brennan", "Haddad", "Kowalski", "Tanaka",
        "Ferreira", "Schmidt", "Adeyemi", "Rossi", "Petrov", "Nilsen", "Duarte", "Keller", "Yilmaz",
        "Osei", "Varga", "Whitfield", "Marin", "Sato", "Horvat", "Lopez", "Becker", "Mensah", "Quinn"]
CITIES = ["Northfield", "Port Avalon", "Kestrel Bay", "Marlow", "Eastbrook", "Silverton", "Ashby",
          "Riverton", "Glenmoor", "Halden", "Brightwater", "Stonebridge", "Larchmont", "Westhaven",
          "Millbrook", "Carrow", "Dunmore", "Fairhaven", "Oakridge", "Redcliff", "Thornbury", "Valemont"]
COUNTRIES = ["Norway", "Brazil", "Kenya", "Canada", "Japan", "Poland", "Chile", "Portugal", "Ghana",
             "Vietnam", "Austria", "Mexico", "Finland", "Morocco", "Ireland", "Peru", "Denmark", "Ukraine"]
DAYS = ["on Monday", "on Tuesday", "on Wednesday", "on Thursday", "on Friday", "on Saturday",
        "on Sunday", "late on Monday", "early on Wednesday", "on Thursday evening", "last week",
        "over the weekend", "on Friday morning", "overnight"]
ROLES = ["a spokesperson for", "the chief economist at", "a senior researcher at", "the director of",
         "a lawyer representing", "an analyst at", "the head of policy at", "a former adviser to",
         "the deputy chair of", "a union organiser at", "a professor at", "the treasurer of"]
ORGS = ["the regional council", "the transport authority", "the central statistics office",
        "the national farmers' union", "the city university", "the port operator", "the health board",
        "the energy regulator", "the chamber of commerce", "the meteorological service",
        "the football association", "the national museum", "the teachers' federation",
        "the water company", "the housing agency", "the science academy", "the consumer watchdog"]
ATTRIB = ["officials said", "according to a statement", "a spokesperson confirmed", "local media reported",
          "documents seen by reporters show", "people familiar with the matter said", "the agency said",
          "organisers said", "figures published on the same day showed", "witnesses said"]
ADVERBS = ["also", "reportedly", "quietly", "formally", "finally", "again", "narrowly", "unexpectedly",
           "already", "partly", "effectively", "swiftly", "eventually", "initially", "broadly", "now"]
SAYS = ["said", "stated", "noted", "told reporters", "added", "argued", "insisted", "suggested", "conceded"]
ADJ = ["modest", "overdue", "ambitious", "controversial", "unexpected", "cautious", "welcome", "costly",
       "hasty", "significant", "limited", "historic", "disappointing", "pragmatic", "risky"]
USERS = ["river_fan", "jk1987", "Margo T.", "northwind", "old_reader", "Pete from Ashby", "sceptic42",
         "lunchbreak", "anna.k", "plainspoken", "bus_commuter", "DrT", "quietvoice", "fieldnotes"]
SITE_WORDS = (["The Northfield", "Kestrel Bay", "Daily", "Evening", "Morning", "The Valley", "Coastal",
               "Metro", "The Harbour", "Western", "Capital", "Lakeside", "The Highland", "Midland"],
              ["Herald", "Courier", "Gazette", "Post", "Observer", "Chronicle", "Ledger", "Tribune",
               "Standard", "Express", "Sentinel", "Record", "Journal", "Dispatch"])

SECTIONS: dict[str, list[str]] = {
    "politics": [
        "{The coalition|The opposition|The governing party|A cross-party group|Rebel backbenchers|The junior "
        "partner} {adv} {tabled|blocked|amended|rushed through|shelved|revived} a {bill|motion|draft law|package} "
        "on {electoral reform|party funding|local budgets|police powers|parliamentary ethics|housing|childcare} "
        "{day}, {attrib}.",
        "{person}, {role} {org}, {says} the {vote|compromise|decision|timetable|deal|wording} was {adj}.",
        "{Members of parliament|Councillors|Campaigners|Mayors} from {city} {argued|warned|complained|insisted} "
        "that the {plan|measure|reform|proposal} would {cost|save|divert|free up|tie up} {about|nearly|more "
        "than|up to} {n} million {in the first year|over five years|annually|by {year}}.",
        "{The prime minister|The interior minister|The speaker|The president|The opposition leader} {adv} "
        "{dismissed|welcomed|questioned|defended|rejected} the {report|inquiry|petition|proposal|leak} {during "
        "a visit to {city}|in a radio interview|at a press conference|in a late-night post|before cabinet}.",
        "A {poll|survey|study|canvass} of {n} {voters|residents|party members|households} {in {city}|nationwide|"
        "in rural districts|along the coast} found {pct} {support|oppose|are undecided about|doubt} the "
        "{change|new rules|referendum|merger}.",
        "{Negotiations|Talks|Discussions} between {the two largest parties|coalition partners|regional leaders|"
        "unions and ministers} {adv} {stalled|resumed|broke down|continued|dragged on} {day} over {pensions|"
        "defence spending|housing targets|the budget deficit|school funding}.",
        "{Critics|Opponents|Some lawmakers|Local groups} in {city} called the {appointment|move|delay|reshuffle|"
        "ruling} {adj}, while {supporters|allies|its backers} {said it was long overdue|praised its speed|urged "
        "patience|asked for time}.",
        "The {committee|tribunal|electoral commission|ombudsman|audit office} will {publish its findings|hold "
        "hearings|report back|take evidence} {in the spring|before the summer recess|next month|within {n} "
        "weeks|after the election}.",
    ],
    "economy": [
        "{The central bank|The finance ministry|The statistics office|The treasury} {says} inflation {rose|fell|"
        "eased|held|edged up} to {pct} in {January|March|June|September|November|the year to May}, {attrib}.",
        "Shares in {city} {Holdings|Logistics|Energy|Foods|Steel|Telecom} {jumped|slid|rebounded|dropped|"
        "climbed} {pct} after the {company|group|firm} {cut its forecast|announced a buyback|lost a major "
        "contract|beat expectations|replaced its chief}.",
        "{person}, {role} {org}, {says} {wages|exports|retail sales|factory orders|house prices} were likely to "
        "{recover|stagnate|slow|pick up|stabilise} {by the end of the year|next quarter|within months|in {year}}.",
        "Exports to {country} {grew|shrank|doubled|levelled off|recovered} by {pct} {last quarter|this year|in "
        "the first half}, {helped|hurt|shaped} by {a weaker currency|new trade rules|lower freight costs|strong "
        "demand|port delays}.",
        "Unemployment in {city} {fell|rose|stayed|settled} {to|near|at} {pct}, the {lowest|highest|steadiest} "
        "{level|reading|figure} {since records began|in a decade|for {n} months}.",
        "The {government|regional authority|port operator|city council} {adv} {approved|delayed|scrapped|"
        "revived} a {n} million {rail|harbour|road|broadband|housing|hospital} {project|scheme|upgrade} {day}.",
        "{Economists|Traders|Most analysts|Bond investors} {expect|doubt|warn|bet} that interest rates will "
        "{stay on hold|be cut|rise again|fall twice} {at the next meeting|before the summer|this autumn|in {year}}.",
        "{Small businesses|Shopkeepers|Farmers|Hauliers} in {city} {reported|complained of|benefited from} "
        "{higher energy bills|cheaper credit|staff shortages|rising rents|slower sales}, {attrib}.",
    ],
    "sport": [
        "{city} {beat|drew with|lost to|thrashed|edged past} {city} {n}-{n} {day} {in front of a sell-out "
        "crowd|after extra time|in the league|in the cup quarter-final|on a wet pitch}.",
        "{person} {scored twice|saved a penalty|was sent off|limped off injured|hit the post} {before "
        "half-time|in the second half|in stoppage time|early on|on his debut|on her return}.",
        "The {coach|manager|captain|head coach} {says} the {result|performance|season|display} was {adj} and "
        "{that|insisted} the {squad|team|players} would {regroup|rotate|train on Sunday|review the footage}.",
        "{person} {won|retained|narrowly missed} the {national|regional|indoor|junior} {title|record|medal} "
        "in {city}, finishing {pct} ahead of {the field|the favourite|last year's winner}.",
        "Ticket prices at {city} {stadium|arena|racecourse} will {rise|fall|stay frozen} {next season|from "
        "August|for members|for children}, {attrib}.",
        "The {football association|cycling federation|rowing club|athletics body|league} {adv} {fined|cleared|"
        "suspended|warned} {person} {over a doping test|for misconduct|after an appeal|for dissent}.",
        "{Fans|Supporters|Season-ticket holders} {travelled|queued|protested|sang} {for hours|outside the "
        "ground|along the river|in the rain} {day} before the {derby|final|opening match|play-off}.",
    ],
    "weather": [
        "{Heavy rain|Strong winds|A heatwave|Thick fog|Snow|Hail} {hit|swept across|lingered over|battered} "
        "{city} {day}, {attrib}.",
        "The {meteorological service|weather agency|forecast office} {issued|extended|lifted} {an amber|a "
        "yellow|a red} warning for {city} and {the coast|the hills|nearby valleys} {until Thursday|through "
        "the weekend|for {n} hours}.",
        "Temperatures {reached|dropped to|hovered around|peaked at} {n} degrees {in the afternoon|overnight|"
        "in the south|inland}, {the warmest|the coldest|the most unusual} {for the time of year|in {n} years}.",
        "{Rescue teams|Firefighters|Volunteers|Coastguards} {evacuated|checked on|rescued|sheltered} {n} "
        "{residents|hikers|drivers|campers} {after flooding|during the storm|near the river|on the motorway}.",
        "{Farmers|Ski resorts|Ferry operators|Schools|Rail companies} in {city} {said|warned|reported} the "
        "{weather|drought|storm|frost} had {delayed|cancelled|disrupted} {harvests|services|classes|trains}.",
        "{Forecasters|Meteorologists} {expect|predict} {drier|wetter|colder|milder} conditions {later in the "
        "week|next month|by the weekend}, with {gusts|showers|frost|sleet} in {exposed areas|the north|higher "
        "ground}.",
    ],
    "science": [
        "{Researchers|Scientists|A team} at {org} {found|reported|showed} that {bees|coral reefs|soil microbes|"
        "migrating birds|deep-sea fish|bats} {respond|adapt|react} to {warmer water|light pollution|noise|"
        "drought|pesticides} {faster than expected|in surprising ways|within weeks}.",
        "The {study|paper|analysis}, published in {a peer-reviewed journal|a preprint|the academy's bulletin}, "
        "{followed|tracked|sampled} {n} {patients|samples|sites|volunteers} over {n} {years|seasons|months}.",
        "{person}, {role} {org}, {says} the {results|findings|data} were {adj} but {needed|deserved|called "
        "for} {replication|larger trials|more funding|careful interpretation}.",
        "A {telescope|satellite|probe|sensor network} {built|operated|funded} by {org} {adv} {detected|mapped|"
        "recorded} {a faint signal|methane plumes|ice layers|unusual tremors} {day}.",
        "{Engineers|Students|A start-up} in {city} {tested|built|demonstrated} a {battery|water filter|wind "
        "turbine|bridge sensor} that could {cut costs|last longer|save energy} by {pct}.",
        "The {grant|programme|mission|project} will {run|cost|employ} {for {n} years|about {n} million|{n} "
        "scientists}, {attrib}.",
    ],
    "health": [
        "{The health board|Hospitals in {city}|The ministry|Family doctors} {reported|recorded|expected} {n} "
        "{flu cases|admissions|vaccinations|referrals} {last week|this month|{day}}, {attrib}.",
        "{person}, {role} {org}, {urged|advised|reminded} {parents|older residents|employers|commuters} to "
        "{get vaccinated|stay at home when ill|book check-ups|drink more water}.",
        "Waiting times at {city} {clinics|hospitals|surgeries} {fell|rose|doubled} to {n} {days|weeks} after "
        "{staff shortages|a new booking system|extra funding|a cyber attack}.",
        "A trial of a {new drug|screening test|walking programme|diet plan} {cut|reduced|halved} {symptoms|"
        "readmissions|costs} by {pct} among {n} {participants|patients|adults}.",
        "{Nurses|Junior doctors|Paramedics|Care workers} in {city} {voted to strike|accepted a pay offer|"
        "rejected new rotas} {day}, {attrib}.",
    ],
    "culture": [
        "The {museum|theatre|orchestra|library|gallery} in {city} {adv} {reopened|unveiled|cancelled} {a new "
        "wing|its season|an exhibition of {country} painting|a festival} {day}.",
        "{person}'s {novel|film|album|play|memoir} {won|was shortlisted for|missed out on} the {national|"
        "regional|critics'|readers'} {prize|award} {day}.",
        "{Organisers|The venue|Police} {said|estimated} {n} {people|visitors|fans} {attended|queued for|"
        "watched} the {festival|premiere|open-air concert|parade} in {city}.",
        "{Critics|Reviewers|Audiences} called the {production|exhibition|retrospective} {adj}, praising its "
        "{staging|curation|score} but not its {length|ticket prices|ending}.",
        "The {council|foundation|ministry|arts board} {will fund|withdrew funding from|doubled grants for} "
        "{local artists|touring companies|community choirs} {next year|from April|for {n} years}.",
    ],
}

# Sentences any section may use: they keep paragraphs from being one template after another.
CONNECTIVES = [
    "{person}, {role} {org}, {says} the {situation|outlook|decision|mood} {remained|was} {adj}.",
    "{Residents|Observers|Local businesses|Commentators} in {city} {were divided|reacted calmly|asked for "
    "details|called for clarity}, {attrib}.",
    "{Further|More|Fuller} {details|figures|information} {are expected|will follow|should emerge} {day}, {attrib}.",
    "{It was not immediately clear|No one could say|Officials did not say} {whether|when|how} the {plan|"
    "change|talks|measure} would {take effect|proceed|be funded}.",
    "The {figures|remarks|plans|comments} come {days|weeks|a month} after {a similar row in {city}|protests "
    "in {city}|a report by {org}}.",
    "{person} told {reporters|the broadcaster|a local paper} in {city} that {there was no rush|more work was "
    "needed|the matter was closed|talks would continue}.",
]

# Background for on-topic stories: the region and the diplomacy around it, naming no one topic.
WORLD = [
    "{Oil prices|Brent crude|Shipping insurance rates} {rose|jumped|edged higher|steadied} {pct} {day} as "
    "{traders|markets|insurers} {weighed|priced in|watched} the {risk|prospect} of {escalation|wider "
    "conflict|supply disruption} in the Gulf.",
    "{The UN Security Council|The UN secretary general|Gulf states|Regional mediators} {called for|urged|"
    "pressed for} {restraint|calm|de-escalation|dialogue} {day}, {attrib}.",
    "{person}, {role} {org}, {says} the {region|Gulf|Middle East} was {entering|facing|heading into} "
    "{a dangerous phase|a period of uncertainty|a test of diplomacy}.",
    "{Diplomats in Brussels|Officials in Riyadh|Envoys in New York|Ministers in Ankara} {said|noted|"
    "cautioned} that {any misstep|a single incident|the next few weeks} could {derail|shape|decide} "
    "{regional diplomacy|the talks|the outcome}.",
    "{Airlines|Shipping companies|Tanker operators} {rerouted|suspended|delayed} {flights|voyages|"
    "departures} {through the region|over the Gulf|near the Strait of Hormuz} {as a precaution|for {n} "
    "hours|until further notice}.",
    "{Israel's prime minister|Israeli officials|The Israeli cabinet} {said|warned|signalled} that Israel "
    "would {act|respond|defend itself} {if necessary|without hesitation|alone if it had to}.",
]

# Sentence openers, used now and then so that sentences do not all begin alike.
OPENERS = ["On {day_name}, ", "Meanwhile, ", "In {city}, ", "Separately, ", "By contrast, ", "As expected, ",
           "For now, ", "Earlier, ", "At the same time, ", "Speaking to reporters, ", "In a statement, ",
           "According to {person}, ", "Later, ", "Even so, ", "In recent days, ", "Once again, "]

HEADLINES: dict[str, list[str]] = {
    "politics": ["{Coalition|Opposition|Parliament} {backs|blocks|delays} {electoral reform|budget plan|"
                 "police bill} {in late vote|after long debate|amid protests}",
                 "{City|Regional} leaders {clash|agree|split} over {housing targets|pensions|tax plans}"],
    "economy": ["Inflation {eases|rises|holds} {to|at|near} {pct} as {exports|wages|prices} {climb|slow|stall}",
                "{city} {port|rail|housing} project {approved|shelved|delayed} {after review|amid costs}"],
    "sport": ["{city} {beat|hold|stun} {city} in {derby|cup tie|league clash}",
              "{person} {wins|retains|misses} {national|indoor} {title|record}"],
    "weather": ["{Storm|Heatwave|Floods|Snow} {disrupts|hits|threatens} {city} {and the coast|again|"
                "overnight}", "{Amber|Yellow|Red} warning issued for {city}"],
    "science": ["{Study|Researchers} {finds|find} {bees|reefs|birds} adapt to {warming|noise|drought}",
                "{city} engineers test {cheaper|longer-lasting} {batteries|turbines|filters}"],
    "health": ["{Flu cases|Waiting times|Admissions} {rise|fall|double} in {city}",
               "Nurses in {city} {vote to strike|accept pay offer}"],
    "culture": ["{city} {museum|theatre|orchestra} {reopens|unveils|cancels} {new wing|season|exhibition}",
                "{person}'s {novel|film|album} {wins|shortlisted for} {prize|award}"],
}

# On-topic sentences, written for this benchmark (26 templates over the two topics). Each has
# a choice every few words so that on-topic articles, too, share few 5-word runs.
TOPIC_SENTENCES: dict[str, list[str]] = {
    "iran-missiles": [
        "{Iran|Tehran|The Islamic Republic|Iran's military} {test-fired|launched|fired|tested} a new "
        "{medium-range|long-range|solid-fuel|precision-guided} ballistic missile {day}, {state media reported|"
        "the Revolutionary Guards said|according to Iranian television|the IRGC announced}.",
        "The {Revolutionary Guards|IRGC|Guards' aerospace force} {said|claimed|boasted} the {Kheibar|Fattah|"
        "Sejjil|Emad|Khorramshahr} missile {had|has} a range of {about|nearly|up to} {rangekm} kilometres and "
        "{could|can} {carry a heavier warhead|manoeuvre in flight|evade air defences|strike with high accuracy}.",
        "{Footage|Images|Video|Pictures} {released|broadcast|published} by {Iranian state media|the Guards' "
        "news agency|state television} showed the missile {lifting off|rising|being launched} from {a desert "
        "launch pad|a mobile launcher|an underground silo|a truck} {near {ircity}|in the central province|"
        "before dawn|at night}.",
        "{Iran's defence minister|A senior IRGC commander|Iran's army chief|The Guards' aerospace chief} "
        "{vowed|said|insisted|promised} that missile {research|production|development|testing} would "
        "{continue|accelerate|expand|not stop} {despite Western pressure|regardless of sanctions|as a "
        "deterrent|whatever the cost}.",
        "{Washington|The United States|The US State Department|The White House} {condemned|criticised|"
        "denounced} the {launch|test|firing} as {a violation|a breach|an open violation} of UN {restrictions|"
        "resolutions|limits} on {Iran's ballistic missile programme|Iranian missile work|Tehran's missiles}.",
        "{European governments|Britain, France and Germany|The E3} {said|warned|argued} Iran's {latest missile "
        "test|missile activity|satellite launch} was {destabilising|inconsistent with UN resolutions|a threat "
        "to regional security}.",
        "The {US Treasury|US government|European Union|British government} {imposed|announced|widened|"
        "extended} sanctions on {n} {companies|individuals|front firms|shipping agents} {accused of|suspected "
        "of} {supplying parts for|financing|procuring components for} Iran's {missile and drone programmes|"
        "ballistic missile industry|missile makers}.",
        "{Analysts|Western officials|Israeli intelligence|Arms-control experts} {said|believe|noted} the "
        "{test|launch|unveiling} {showed|suggested|indicated} {Tehran|Iran} had {improved|refined|upgraded} "
        "the {accuracy|range|solid-fuel motors|guidance} of its missiles {in recent years|since {year}|despite "
        "sanctions}.",
        "{Iran|The Guards|Iranian commanders} {unveiled|showed off|displayed|opened} an underground {missile "
        "city|base|tunnel network|bunker} {storing|packed with|holding} {cruise and ballistic missiles|hundreds "
        "of missiles|launchers and drones}, {the Guards said|state television reported|officials said}.",
        "{Officials in Kyiv|Ukrainian officials|Western intelligence|US officials} said Iranian {missiles|"
        "drones|ballistic missiles|short-range missiles} had been {transferred|shipped|delivered|sent} to "
        "Russia {in recent months|by sea|via the Caspian|this year}.",
        "Iran {launched|put into orbit|tried to launch} a {satellite|research satellite|military satellite} "
        "on a {Simorgh|Qaem-100|Zuljanah|Qased} rocket, which {Western officials|US officials|experts} {say|"
        "warn|fear} {could advance|may help|will boost} its long-range missile {technology|ambitions|work}.",
        "{Tehran|Iran|Iranian leaders} {insists|maintains|has repeatedly said} {its ballistic missiles are|its "
        "missile arsenal is|its missile programme is} {purely defensive|not negotiable|a deterrent} and {not "
        "designed to carry nuclear weapons|vital to its security|no one else's business}.",
        "{Iran fired|The Guards launched|Iranian forces launched} {waves of|dozens of|a barrage of|scores of} "
        "ballistic missiles and drones at {targets in Israel|US bases in the region|positions across the "
        "border} {day}, {officials said|according to the Israeli military|the Pentagon said}.",
        "{US and Israeli strikes|Air strikes|Israeli jets|Precision strikes} {hit|damaged|destroyed} Iranian "
        "{missile production sites|missile launchers|solid-fuel plants|missile factories} {near {ircity}|in "
        "the west of the country|{day}}, {satellite images showed|officials said|analysts said}.",
    ],
    "jcpoa-talks": [
        "{Negotiators|Diplomats|Envoys|Delegations} {met|gathered|reconvened|sat down} in {Vienna|Geneva|"
        "Muscat|Doha|Rome} {day} to {try to revive|salvage|restore|rescue} the 2015 {nuclear deal|nuclear "
        "accord|nuclear agreement} with {Iran|Tehran}, {diplomats said|officials confirmed|the EU said}.",
        "{Iran and world powers|Iranian and American negotiators|Tehran and the E3|Iran and the remaining "
        "parties} {resumed|held a new round of|paused|wrapped up} talks on {restoring|reviving|saving} {the "
        "Joint Comprehensive Plan of Action|the JCPOA|the 2015 accord}.",
        "{Washington|The US envoy|The White House|The State Department} {said|repeated|signalled} it would "
        "{return to|rejoin|re-enter} the nuclear {agreement|deal|accord} if {Tehran|Iran} {returned to full "
        "compliance|rolled back its enrichment|restored inspections}.",
        "{Diplomats|Negotiators|Officials on both sides} said the talks were {stuck|deadlocked|slowed|held up} "
        "on {sanctions relief|limits on uranium enrichment|the sequencing of steps|guarantees against another "
        "US withdrawal}.",
        "The {IAEA chief|head of the UN nuclear watchdog|IAEA director general} {said|warned|stressed} "
        "{inspectors' access|continuity of knowledge|monitoring cameras|verification} {was|remained} essential "
        "to any {deal|agreement} on {Iran's nuclear programme|Tehran's nuclear work}, {speaking in Vienna|"
        "after a visit to Tehran|in a report to the board}.",
        "{Iran's foreign minister|Tehran's chief negotiator|An Iranian spokesman} said a {deal|nuclear "
        "agreement|return to the accord} was {close|within reach|possible within {n} weeks} but {several "
        "issues remained unresolved|Washington had to make a political decision|gaps remained}.",
        "{European powers|Britain, France and Germany|The E3} {warned|said|threatened} they {could|would|"
        "might} trigger the snapback of UN sanctions if {the talks failed|the deadline passed|Iran kept "
        "blocking inspectors}.",
        "{Washington|US officials|The administration} {wants|seeks|is pushing for} a {longer and stronger|"
        "follow-on|broader} {agreement|deal} that would also {cover|limit|address} Iran's {missiles|regional "
        "activities|ballistic missile programme}.",
        "{Tehran|Iran|Iranian officials} {rejected|ruled out|refused} any {attempt|effort|demand} to {add|"
        "include|bring} its ballistic missile programme {to|into} the nuclear {negotiations|talks}, {its "
        "spokesman said|state media reported|the foreign ministry said}.",
        "{Iran has enriched|Tehran is enriching|Iran now enriches} uranium to {60|up to 60|as much as 60} per "
        "cent purity, {far|well} beyond the {3.67 per cent cap|limit} {set by|agreed in} the nuclear deal, "
        "{the IAEA reported|according to the agency's latest report|inspectors found}.",
        "{Oman|Qatar|The European Union} {mediated|relayed messages in|hosted|facilitated} indirect talks "
        "between Iranian and American {negotiators|envoys|officials} on the nuclear {programme|file|dispute} "
        "{day}.",
        "The United States {withdrew from|abandoned|quit} the nuclear {agreement|deal} in 2018 and "
        "{reimposed|restored|tightened} sanctions, and Iran {then|later|gradually} {breached|exceeded|stopped "
        "observing} its {limits|commitments}.",
    ],
}
TOPIC_HEADLINES: dict[str, list[str]] = {
    "iran-missiles": ["Iran {test-fires|unveils|launches} {new|long-range|solid-fuel} ballistic missile",
                      "{US|EU|UN} {condemns|sanctions} Iran over {missile test|missile programme}",
                      "Iran's Guards {show|reveal} {underground missile base|new missile}"],
    "jcpoa-talks": ["{Iran nuclear talks|JCPOA talks} {resume|stall|resume in Vienna} {again|as deadline nears}",
                    "{E3|Europe} {warns|threatens} Iran with snapback {of sanctions|as talks stall}",
                    "Iran says nuclear deal {close|within reach} but {gaps remain|issues unresolved}"],
}
NAV_SECTIONS = ["World", "Politics", "Economy", "Business", "Markets", "Sport", "Football", "Tennis",
                "Weather", "Science", "Health", "Culture", "Books", "Film", "Music", "Travel", "Opinion",
                "Obituaries", "Technology", "Education", "Property", "Motoring", "Puzzles", "Podcasts"]
EDITS = {"said": "told reporters", "about": "roughly", "warned": "cautioned", "would": "will",
         "officials": "authorities", "expected": "anticipated", "showed": "indicated"}
# fmt: on

_CHOICE = re.compile(r"\{([^{}]*)\}")
_SPACES = re.compile(r" {2,}")


def expand(template: str, rng: random.Random) -> str:
    """Fill a template: ``{name}`` from the slot lists, ``{a|b|c}`` picks one; nests inside out."""
    text = template
    while True:
        new = _CHOICE.sub(lambda m: _slot(m.group(1), rng), text)
        if new == text:
            # Optional slots ({adv}) leave double spaces behind.
            return _SPACES.sub(" ", new)
        text = new


_SLOTS: dict[str, Callable[[random.Random], str]] = {
    "person": lambda rng: f"{rng.choice(FIRST)} {rng.choice(LAST)}",
    "role": lambda rng: rng.choice(ROLES),
    "org": lambda rng: rng.choice(ORGS),
    "city": lambda rng: rng.choice(CITIES),
    "country": lambda rng: rng.choice(COUNTRIES),
    "day": lambda rng: rng.choice(DAYS),
    "day_name": lambda rng: rng.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]),
    "adv": lambda rng: rng.choice(ADVERBS) if rng.random() < 0.4 else "",
    "says": lambda rng: rng.choice(SAYS),
    "attrib": lambda rng: rng.choice(ATTRIB),
    "adj": lambda rng: rng.choice(ADJ),
    "n": lambda rng: str(rng.randint(2, 480)),
    "pct": lambda rng: f"{rng.randint(1, 19)}.{rng.randint(0, 9)}%",
    "rangekm": lambda rng: f"{rng.randint(14, 30) * 100:,}",
    "year": lambda rng: str(rng.randint(2012, 2022)),
    "ircity": lambda rng: rng.choice(["Semnan", "Isfahan", "Shiraz", "Tabriz", "Kermanshah", "Qom"]),
}


def _slot(inner: str, rng: random.Random) -> str:
    if "|" in inner:
        return rng.choice(inner.split("|"))
    fill = _SLOTS.get(inner)
    # An unknown single word stays as literal text (these templates never produce one).
    return fill(rng) if fill else inner


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


# Words that start a sentence as names, so keep their capital behind an opener.
_PROPER = {
    *FIRST, *COUNTRIES, *(city.split()[0] for city in CITIES),
    "Iran", "Iranian", "Tehran", "Washington", "Oman", "Qatar", "Britain", "European", "Israel", "Israeli",
    "US", "UN", "IAEA", "E3", "Western", "Ukrainian", "Gulf", "Brent",
}  # fmt: skip


def _sentence(template: str, rng: random.Random) -> str:
    """One body sentence; now and then behind an opener ("Meanwhile, the …")."""
    text = capitalise(expand(template, rng))
    if rng.random() < 0.3:
        first, _, rest = text.partition(" ")
        # Behind an opener the first word loses its capital, unless it is a name ("Iran's").
        if first.rstrip(",").split("'")[0] not in _PROPER:
            text = f"{first.lower()} {rest}"
        text = expand(rng.choice(OPENERS), rng) + text
    return text


@dataclass(frozen=True)
class ArticleSpec:
    """What is known about one article before its page is rendered."""

    index: int  # global index (the page's identity)
    feed: int  # the feed / host that lists it
    section: str
    topic: str | None  # one of TOPIC_IDS for on-topic articles
    title: str
    path: str
    published: datetime
    author: str
    summary: str
    copy_of: int | None = None  # index of the original, for syndicated copies
    verbatim: bool = False  # a copy with the original's exact body text


@dataclass
class Corpus:
    """The articles and feeds, as specs; pages and feeds render on demand.

    Args:
        feeds: number of feeds, one per host.
        articles: total article pages, spread evenly over the feeds.
        on_topic: share of pages on the monitor's topics (copies of on-topic stories included).
        syndicated: share of pages that copy another feed's story.
        seed: everything derives from it.
        now: reference time; publication dates fall in the 48 hours before it.
    """

    feeds: int = 50
    articles: int = 2000
    on_topic: float = 0.04
    syndicated: float = 0.03
    seed: int = 7
    now: datetime = field(
        default_factory=lambda: datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    )
    specs: list[ArticleSpec] = field(init=False, repr=False)
    by_feed: list[list[int]] = field(init=False, repr=False)
    sites: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.feeds < 1 or self.articles < self.feeds:
            raise ValueError("need at least one feed and one article per feed")
        rng = random.Random(f"{self.seed}/corpus")
        self.sites = _site_names(rng, self.feeds)
        # Slots: feed f holds articles // feeds (+1 for the first articles % feeds feeds).
        per_feed = [self.articles // self.feeds + (f < self.articles % self.feeds) for f in range(self.feeds)]
        slots = [f for f in range(self.feeds) for _ in range(per_feed[f])]
        n = len(slots)
        n_copies = round(self.syndicated * n) if self.feeds > 1 else 0
        copy_slots = set(rng.sample(range(n), n_copies))
        originals = [i for i in range(n) if i not in copy_slots]
        # ``on_topic`` is the share of all pages; a quarter of the copies carry an on-topic story
        # (wire copies of such stories are common, and they exercise story-level alerting).
        n_topical = round(self.on_topic * n)
        topical_copies = set(sorted(copy_slots)[::4]) if n_topical else set()
        topical = set(rng.sample(originals, min(max(n_topical - len(topical_copies), 0), len(originals))))
        # Originals are specified first so that copies can refer to them.
        specs: dict[int, ArticleSpec] = {}
        for i in originals:
            specs[i] = self._original(i, slots[i], rng.choice(TOPIC_IDS) if i in topical else None)
        topical_list, plain_list = sorted(topical), [i for i in originals if i not in topical]
        for number, i in enumerate(sorted(copy_slots)):
            pool = topical_list if i in topical_copies and topical_list else plain_list
            candidates = [j for j in pool if slots[j] != slots[i]] or [
                j for j in originals if slots[j] != slots[i]
            ]
            source = specs[rng.choice(candidates)]
            # Every 1/VERBATIM_SHARE-th copy is verbatim: an exact share, spread over the corpus.
            verbatim = int((number + 1) * VERBATIM_SHARE) > int(number * VERBATIM_SHARE)
            specs[i] = self._copy(i, slots[i], source, verbatim)
        self.specs = [specs[i] for i in range(n)]
        self.by_feed = [[] for _ in range(self.feeds)]
        for spec in self.specs:
            self.by_feed[spec.feed].append(spec.index)

    # --- specs ---------------------------------------------------------------------------

    def _original(self, i: int, feed: int, topic: str | None) -> ArticleSpec:
        rng = random.Random(f"{self.seed}/spec/{i}")
        if topic:
            section, title = "world", expand(rng.choice(TOPIC_HEADLINES[topic]), rng)
        else:
            section = rng.choice(list(SECTIONS))
            title = capitalise(expand(rng.choice(HEADLINES[section]), rng))
        published = self.now - timedelta(minutes=rng.randint(5, 48 * 60))
        return ArticleSpec(
            index=i,
            feed=feed,
            section=section,
            topic=topic,
            title=title,
            path=_path(section, published, title, i),
            published=published,
            author=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            summary=expand(rng.choice(TOPIC_SENTENCES[topic] if topic else SECTIONS[section]), rng),
        )

    def _copy(self, i: int, feed: int, source: ArticleSpec, verbatim: bool) -> ArticleSpec:
        rng = random.Random(f"{self.seed}/spec/{i}")
        if source.topic:
            title = expand(rng.choice(TOPIC_HEADLINES[source.topic]), rng)
        else:
            title = capitalise(expand(rng.choice(HEADLINES[source.section]), rng))
        title = f"{title} – {rng.choice(['report', 'latest', 'update', 'what we know'])}"
        published = source.published + timedelta(minutes=rng.randint(10, 300))
        return ArticleSpec(
            index=i,
            feed=feed,
            section=source.section,
            topic=source.topic,
            title=title,
            path=_path(source.section, published, title, i),
            published=min(published, self.now),
            author=source.author,
            summary=source.summary,
            copy_of=source.index,
            verbatim=verbatim,
        )

    # --- counts the benchmark checks against ---------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Counts of the corpus: pages, copies, on-topic pages, and what the monitor should store."""
        copies = [s for s in self.specs if s.copy_of is not None]
        verbatim = sum(s.verbatim for s in copies)
        return {
            "feeds": self.feeds,
            "pages": len(self.specs),
            "seed": self.seed,
            "on_topic_pages": sum(s.topic is not None for s in self.specs),
            "on_topic_by_topic": dict(Counter(s.topic for s in self.specs if s.topic)),
            "syndicated_copies": len(copies),
            "verbatim_copies": verbatim,
            "distinct_texts": len(self.specs) - verbatim,
        }

    # --- rendering -----------------------------------------------------------------------

    def paragraphs(self, spec: ArticleSpec) -> list[str]:
        """The article body's paragraphs (a copy's are its original's, edited unless verbatim)."""
        if spec.copy_of is not None:
            original = self.paragraphs(self.specs[spec.copy_of])
            return original if spec.verbatim else _edit(original, spec, self.sites[spec.feed])
        rng = random.Random(f"{self.seed}/body/{spec.index}")
        target = rng.randint(400, 1200)
        pool = TOPIC_SENTENCES[spec.topic] if spec.topic else SECTIONS[spec.section]
        paragraphs, words = [], 0
        while words < target:
            sentences = []
            for _ in range(rng.randint(2, 5)):
                # On-topic bodies stay mostly on topic (so that every passage is), with regional
                # background; others mix in connectives.
                if rng.random() < (0.65 if spec.topic else 0.75):
                    template = rng.choice(pool)
                else:
                    template = rng.choice(WORLD if spec.topic and rng.random() < 0.7 else CONNECTIVES)
                sentences.append(_sentence(template, rng))
            text = " ".join(sentences)
            paragraphs.append(text)
            words += len(text.split())
        return paragraphs

    def page(self, index: int, bases: list[str]) -> bytes:
        """The HTML page of one article; ``bases[f]`` is feed f's site root (``http://host:port``)."""
        spec = self.specs[index]
        rng = random.Random(f"{self.seed}/page/{index}")
        base, site = bases[spec.feed], self.sites[spec.feed]
        url = base + spec.path
        body = self.paragraphs(spec)
        words = sum(len(p.split()) for p in body)
        boiler = _site_boilerplate(self.seed, spec.feed, site, self.now.year)
        neighbours = [
            self.specs[j] for j in rng.sample(self.by_feed[spec.feed], min(14, len(self.by_feed[spec.feed])))
        ]
        related = "".join(
            f'<li class="related__item"><a href="{s.path}"><img src="/img/{s.index}.jpg" alt="" loading="lazy">'
            f"<span>{escape(s.title)}</span></a></li>"
            for s in neighbours[:8]
        )
        most_read = "".join(
            f'<li><a href="{s.path}?ref=mostread">{rank}. {escape(s.title)}</a></li>'
            for rank, s in enumerate(neighbours[8:], start=1)
        )
        comments = "".join(
            f'<div class="comment" id="c{index}-{k}"><span class="comment__user">{rng.choice(USERS)}</span>'
            f'<time>{rng.randint(1, 59)} minutes ago</time><p class="comment__text">'
            f"{escape(capitalise(expand(rng.choice(CONNECTIVES), rng)))}</p>"
            f'<a class="comment__reply" href="#reply">Reply</a> <a href="#report">Report</a></div>'
            for k in range(rng.randint(3, 12))
        )
        published = spec.published.isoformat()
        description = escape(spec.summary)
        ld = json.dumps({
            "@context": "https://schema.org", "@type": "NewsArticle", "headline": spec.title,
            "datePublished": published, "dateModified": published, "wordCount": words,
            "author": {"@type": "Person", "name": spec.author},
            "publisher": {"@type": "Organization", "name": site, "logo": f"{base}/static/logo.png"},
            "mainEntityOfPage": url, "articleSection": spec.section.title(),
        })  # fmt: skip
        head = (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(spec.title)} | {escape(site)}</title>"
            f'<meta name="description" content="{description}">'
            f'<meta property="og:type" content="article"><meta property="og:title" content="{escape(spec.title)}">'
            f'<meta property="og:description" content="{description}"><meta property="og:url" content="{url}">'
            f'<meta property="og:site_name" content="{escape(site)}">'
            f'<meta property="article:published_time" content="{published}">'
            f'<meta property="article:section" content="{spec.section.title()}">'
            f'<meta name="author" content="{escape(spec.author)}"><link rel="canonical" href="{url}">'
            f'<link rel="stylesheet" href="/static/main.{spec.feed:04x}.css">'
            f'<script type="application/ld+json">{ld}</script>{boiler.head_scripts}</head>'
        )
        article = (
            f'<main id="content"><article class="article" itemscope itemtype="https://schema.org/NewsArticle">'
            f'<header><h1 itemprop="headline">{escape(spec.title)}</h1>'
            f'<p class="byline">By <span itemprop="author">{escape(spec.author)}</span> · '
            f'<time datetime="{published}">{spec.published:%d %B %Y, %H:%M}</time></p></header>'
            f'<div class="article__body" itemprop="articleBody">'
            + "".join(f"<p>{escape(p)}</p>" for p in body)
            + "</div></article>"
            f'<aside class="related"><h2>Related articles</h2><ul>{related}</ul></aside>'
            f'<aside class="most-read"><h2>Most read</h2><ol>{most_read}</ol></aside>'
            f'<section class="comments" id="comments"><h2>Comments</h2>{comments}</section></main>'
        )
        page = head + "<body>" + boiler.cookie + boiler.nav + article + boiler.footer
        # The analytics/ad-config blob takes the page to its target size (60–150 KB).
        room = rng.randint(60_000, 150_000) - len(page) - 40
        blob = boiler.blob[: boiler.blob_cut(room)]
        page += f'<script id="analytics">window.__CONFIG__={{"slots":[{blob}]}};</script></body></html>'
        return page.encode("utf-8")

    def feed(self, feed: int, bases: list[str]) -> bytes:
        """Feed ``feed``'s RSS 2.0 document, newest item first."""
        base, site = bases[feed], self.sites[feed]
        items = []
        for index in sorted(self.by_feed[feed], key=lambda j: self.specs[j].published, reverse=True):
            s = self.specs[index]
            link = base + s.path
            items.append(
                f"<item><title>{xml_escape(s.title)}</title><link>{link}</link><guid>{link}</guid>"
                f"<description>{xml_escape(s.summary)}</description>"
                f"<pubDate>{format_datetime(s.published)}</pubDate></item>"
            )
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>{xml_escape(site)}</title><link>{base}/</link><description>Latest from "
            f"{xml_escape(site)}</description><language>en</language>{''.join(items)}</channel></rss>"
        ).encode()


def _path(section: str, published: datetime, title: str, index: int) -> str:
    slug = "-".join(re.findall(r"[a-z0-9]+", title.lower())[:8])
    return f"/{section}/{published:%Y/%m/%d}/{slug}-{index}.html"


def _site_names(rng: random.Random, n: int) -> list[str]:
    combos = [f"{a} {b}" for a in SITE_WORDS[0] for b in SITE_WORDS[1]]
    rng.shuffle(combos)
    return [
        combos[i % len(combos)] + ("" if i < len(combos) else f" {i // len(combos) + 1}") for i in range(n)
    ]


def _edit(paragraphs: list[str], spec: ArticleSpec, site: str) -> list[str]:
    """A syndicator's light edit: a dateline, a few words changed, maybe the last paragraph cut."""
    rng = random.Random(f"syndication/{spec.index}")
    edited = []
    for number, text in enumerate(paragraphs):
        if rng.random() < 0.3:
            text = " ".join(EDITS.get(w, w) if rng.random() < 0.5 else w for w in text.split())
        edited.append(f"({site}) – {text}" if number == 0 else text)
    if len(edited) > 3 and rng.random() < 0.5:
        edited.pop()
    edited.append(f"This story was first published by a partner outlet and is republished by {site}.")
    return edited


@dataclass(frozen=True)
class _Boilerplate:
    head_scripts: str
    cookie: str
    nav: str
    footer: str
    blob: str
    cuts: list[int]  # offsets in ``blob`` just after a complete entry

    def blob_cut(self, size: int) -> int:
        """The longest prefix of whole entries no longer than ``size`` characters."""
        at = bisect.bisect_right(self.cuts, max(size, 0)) - 1
        return self.cuts[at] if at >= 0 else 0


_BOILER: dict[tuple[int, int], _Boilerplate] = {}
_BOILER_LOCK = threading.Lock()


def _site_boilerplate(seed: int, feed: int, site: str, year: int) -> _Boilerplate:
    """A site's shared chrome (menus, scripts, footer, config blob), built once per site."""
    key = (seed, feed)
    with _BOILER_LOCK:
        if key in _BOILER:
            return _BOILER[key]
    rng = random.Random(f"{seed}/site/{feed}")
    sub = ["Latest", "Analysis", "Explainers", "Live", "Video", "In pictures", "Newsletters", "Archive"]
    menu = "".join(
        f'<li class="nav__item"><a href="/{s.lower()}/">{s}</a><ul class="nav__sub">'
        + "".join(f'<li><a href="/{s.lower()}/{t.lower().replace(" ", "-")}/">{t}</a></li>' for t in sub)
        + "</ul></li>"
        for s in NAV_SECTIONS
    )
    nav = (
        f'<header class="masthead"><a class="logo" href="/">{escape(site)}</a>'
        '<form class="search" action="/search"><input name="q" placeholder="Search"></form>'
        '<a href="/subscribe" class="cta">Subscribe</a> <a href="/login">Sign in</a></header>'
        f'<nav class="nav" aria-label="Sections"><ul>{menu}</ul></nav>'
        '<div class="ticker">Breaking: <a href="/live/">Follow our live coverage</a></div>'
    )
    cookie = (
        '<div id="cookie-banner" class="consent" role="dialog"><p>We use cookies and similar technologies '
        "to run this site, measure audiences and show personalised advertising. You can accept all, reject "
        'non-essential cookies or choose your settings at any time.</p><button id="accept">Accept all</button>'
        '<button id="reject">Reject</button><a href="/privacy/cookies">Manage settings</a></div>'
    )
    footer_links = "".join(
        f'<li><a href="/{g.lower()}/{k}">{g} {k}</a></li>'
        for g in [
            "About",
            "Help",
            "Advertise",
            "Jobs",
            "Terms",
            "Privacy",
            "Contact",
            "Archive",
            "Apps",
            "Events",
        ]
        for k in range(1, 13)
    )
    footer = (
        f'<footer class="footer"><div class="footer__links"><ul>{footer_links}</ul></div>'
        f"<p>© {escape(site)} {year}. All rights reserved. Registered in {rng.choice(CITIES)}."
        "</p></footer>"
    )
    head_scripts = (
        "<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments);}"
        "gtag('js',new Date());gtag('config','G-"
        + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(10))
        + "');</script><script>(function(w,d){var s=d.createElement('script');s.async=1;"
        "s.src='/static/ads.js';d.head.appendChild(s);w.__ads={lazy:true,refresh:30};})(window,document);"
        "</script>"
        + "".join(f'<link rel="preload" href="/static/font-{k}.woff2" as="font">' for k in range(6))
    )
    entries, cuts, length = [], [], 0
    while length < 160_000:
        entry = json.dumps({
            "id": f"slot-{len(entries)}", "sizes": [[300, 250], [728, 90], [rng.randint(1, 9) * 40, 600]],
            "targeting": {"site": feed, "pos": rng.choice(["top", "mid", "btm", "rail"]),
                          "kw": rng.sample(NAV_SECTIONS, 3), "hash": f"{rng.getrandbits(64):016x}"},
            "lazy": rng.random() < 0.5, "refresh": rng.choice([0, 15, 30, 60]),
        }, separators=(",", ":"))  # fmt: skip
        entries.append(entry)
        length += len(entry) + 1
        cuts.append(length - 1)  # end of this entry, before the comma that would follow it
    boiler = _Boilerplate(head_scripts, cookie, nav, footer, ",".join(entries), cuts)
    with _BOILER_LOCK:
        return _BOILER.setdefault(key, boiler)


# --- serving ---------------------------------------------------------------------------------


class _HostServer(ThreadingHTTPServer):
    """One site: a feed, robots.txt and its article pages, with latency and a connection limit."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: str, feed: int, app: _App) -> None:
        super().__init__((address, 0), _Handler)
        self.feed, self.app = feed, app
        self.slots = threading.BoundedSemaphore(app.per_host)
        self.lock = threading.Lock()
        self.active = self.max_active = self.queued = 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-response is not the server's problem


class _App:
    """State shared by all hosts of the server process."""

    def __init__(self, corpus: Corpus, latency_s: float, per_host: int) -> None:
        self.corpus, self.latency_s, self.per_host = corpus, latency_s, per_host
        self.bases: list[str] = []
        self.paths = {spec.path: spec.index for spec in corpus.specs}
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.bytes = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients can reuse connections
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    timeout = 30  # idle keep-alive connections end on their own
    server: _HostServer

    def do_GET(self) -> None:
        srv, app = self.server, self.server.app
        if not srv.slots.acquire(blocking=False):
            with srv.lock:
                srv.queued += 1
            srv.slots.acquire()
        try:
            with srv.lock:
                srv.active += 1
                srv.max_active = max(srv.max_active, srv.active)
            time.sleep(app.latency_s)
            kind, code, ctype, body = self._route()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with srv.lock:
                srv.active -= 1
            srv.slots.release()
        with app.lock:
            app.counts[kind] += 1
            app.bytes += len(body)

    def _route(self) -> tuple[str, int, str, bytes]:
        app, path = self.server.app, self.path.split("?", 1)[0]
        if path == "/robots.txt":
            return "robots", 200, "text/plain; charset=utf-8", ROBOTS
        if path == FEED_PATH:
            return (
                "feed",
                200,
                "application/rss+xml; charset=utf-8",
                app.corpus.feed(self.server.feed, app.bases),
            )
        index = app.paths.get(path)
        if index is not None and app.corpus.specs[index].feed == self.server.feed:
            return "page", 200, "text/html; charset=utf-8", app.corpus.page(index, app.bases)
        return "missing", 404, "text/plain; charset=utf-8", b"not found"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def host_address(feed: int) -> str:
    """The loopback address of feed ``feed``'s site: 127.0.0.2, 127.0.0.3, … (Linux routes 127/8 to lo)."""
    return f"127.0.{(feed + 2) // 256}.{(feed + 2) % 256}"


def _serve(conn: Any, corpus_args: dict[str, Any], latency_s: float, per_host: int) -> None:
    """Server process: build the corpus, bind every host, answer ``stats``/``stop`` on ``conn``."""
    corpus = Corpus(**corpus_args)
    app = _App(corpus, latency_s, per_host)
    servers = [_HostServer(host_address(f), f, app) for f in range(corpus.feeds)]
    app.bases = [f"http://{s.server_address[0]}:{s.server_address[1]}" for s in servers]
    for s in servers:
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    conn.send(app.bases)
    while True:
        command = conn.recv()
        if command == "stop":
            break
        with app.lock:
            stats = {"requests": dict(app.counts), "bytes": app.bytes}
        stats["max_in_flight_per_host"] = max(s.max_active for s in servers)
        stats["queued_requests"] = sum(s.queued for s in servers)
        stats["rss_mb"] = _rss_mb()
        if command == "reset":
            with app.lock:
                app.counts.clear()
                app.bytes = 0
            for s in servers:
                with s.lock:
                    s.max_active = s.queued = 0
        conn.send(stats)
    for s in servers:
        s.shutdown()
        s.server_close()
    conn.send("stopped")


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


class CorpusServers:
    """Serve a :class:`Corpus` from a child process; use as a context manager.

    Args:
        corpus: the corpus (its constructor arguments are sent to the child, which rebuilds it).
        latency_s: delay before every response.
        per_host: concurrent requests each host serves; more wait.
    """

    def __init__(self, corpus: Corpus, latency_s: float = 0.1, per_host: int = 4) -> None:
        self.corpus, self.latency_s, self.per_host = corpus, latency_s, per_host
        self.bases: list[str] = []
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Any = None

    def __enter__(self) -> CorpusServers:
        # spawn, not fork: the child must not inherit a parent that may have loaded torch.
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        args = {
            k: getattr(self.corpus, k) for k in ("feeds", "articles", "on_topic", "syndicated", "seed", "now")
        }
        self._process = ctx.Process(
            target=_serve,
            args=(child, args, self.latency_s, self.per_host),
            name="corpus-servers",
            daemon=True,
        )
        self._process.start()
        if not self._conn.poll(120):
            raise RuntimeError("corpus servers did not start within 120 s")
        self.bases = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def feed_urls(self) -> list[str]:
        return [base + FEED_PATH for base in self.bases]

    def page_url(self, index: int) -> str:
        spec = self.corpus.specs[index]
        return self.bases[spec.feed] + spec.path

    def stats(self, reset: bool = False) -> dict[str, Any]:
        """Requests by kind, body bytes, the largest per-host in-flight count, queued requests, RSS."""
        with self._lock:
            self._conn.send("reset" if reset else "stats")
            return dict(self._conn.recv())

    def stop(self) -> None:
        if self._process is None:
            return
        with self._lock:
            try:
                self._conn.send("stop")
                self._conn.poll(10)
            except (BrokenPipeError, EOFError, OSError):
                pass
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        self._process = None

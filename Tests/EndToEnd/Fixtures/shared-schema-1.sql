-- The fleet database as relay-milter 0.1.0 left it (built from c20faed, the last commit with shared schema 1): instance mx1 started on an
-- empty database, then `cache set 192.0.2.7 open` and `cache set 2001:db8::25 closed`; dumped with
-- pg_dump --no-owner --no-privileges. test_fleet.py loads it under relay-milter's role.
--
-- PostgreSQL database dump
--

\restrict Gzmo36X9c4wIZE5iTMZRBOeiJvgiZQHEf0Cy22tqlfwnWWLHFVa82XxCFod5Yl1

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: relay_milter_verdict_notify(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.relay_milter_verdict_notify() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('relay_milter_verdicts', '');
    RETURN NULL;
END $$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: relay_milter_schema; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.relay_milter_schema (
    version integer NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: relay_milter_stats_rollup; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.relay_milter_stats_rollup (
    instance text NOT NULL,
    granularity text NOT NULL,
    period bigint NOT NULL,
    action text NOT NULL,
    reason text NOT NULL,
    count bigint NOT NULL
);


--
-- Name: relay_milter_test_claim; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.relay_milter_test_claim (
    host text NOT NULL,
    instance text NOT NULL,
    expires_at timestamp with time zone NOT NULL
);


--
-- Name: relay_milter_verdict_change; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.relay_milter_verdict_change
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: relay_milter_verdict; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.relay_milter_verdict (
    host text NOT NULL,
    verdict text NOT NULL,
    tested_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    accepted_tests text[] NOT NULL,
    tests_run integer NOT NULL,
    banner text NOT NULL,
    detail text NOT NULL,
    source text NOT NULL,
    instance text NOT NULL,
    change_id bigint DEFAULT nextval('public.relay_milter_verdict_change'::regclass) NOT NULL
);


--
-- Data for Name: relay_milter_schema; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.relay_milter_schema (version, applied_at) FROM stdin;
1	2026-12-07 21:29:03.339646+00
\.


--
-- Data for Name: relay_milter_stats_rollup; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.relay_milter_stats_rollup (instance, granularity, period, action, reason, count) FROM stdin;
\.


--
-- Data for Name: relay_milter_test_claim; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.relay_milter_test_claim (host, instance, expires_at) FROM stdin;
\.


--
-- Data for Name: relay_milter_verdict; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.relay_milter_verdict (host, verdict, tested_at, expires_at, accepted_tests, tests_run, banner, detail, source, instance, change_id) FROM stdin;
192.0.2.7	open	2026-12-07 21:29:03.467+00	2026-12-14 21:29:03.467+00	{}	0		set by hand	manual	mx1	1
2001:db8::25	closed	2026-12-07 21:29:03.526+00	2027-01-06 21:29:03.526+00	{}	0		set by hand	manual	mx1	2
\.


--
-- Name: relay_milter_verdict_change; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.relay_milter_verdict_change', 2, true);


--
-- Name: relay_milter_schema relay_milter_schema_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.relay_milter_schema
    ADD CONSTRAINT relay_milter_schema_pkey PRIMARY KEY (version);


--
-- Name: relay_milter_stats_rollup relay_milter_stats_rollup_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.relay_milter_stats_rollup
    ADD CONSTRAINT relay_milter_stats_rollup_pkey PRIMARY KEY (instance, granularity, period, action, reason);


--
-- Name: relay_milter_test_claim relay_milter_test_claim_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.relay_milter_test_claim
    ADD CONSTRAINT relay_milter_test_claim_pkey PRIMARY KEY (host);


--
-- Name: relay_milter_verdict relay_milter_verdict_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.relay_milter_verdict
    ADD CONSTRAINT relay_milter_verdict_pkey PRIMARY KEY (host);


--
-- Name: relay_milter_verdict_change_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX relay_milter_verdict_change_idx ON public.relay_milter_verdict USING btree (change_id);


--
-- Name: relay_milter_verdict relay_milter_verdict_changed; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER relay_milter_verdict_changed AFTER INSERT OR UPDATE ON public.relay_milter_verdict FOR EACH STATEMENT EXECUTE FUNCTION public.relay_milter_verdict_notify();


--
-- PostgreSQL database dump complete
--

\unrestrict Gzmo36X9c4wIZE5iTMZRBOeiJvgiZQHEf0Cy22tqlfwnWWLHFVa82XxCFod5Yl1


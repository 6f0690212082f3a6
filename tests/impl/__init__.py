"""Tests of the reference server (forkshare.impl), most with real processes on 127.0.0.1."""

import streamlit as st

st.title("firmware")
